"""A small LRU of folded list and string fields, so reading a long
conversation's state costs what changed since the last read, not its length.

Safe without invalidation because stored writes never change: an entry is keyed
by (session, origin, field, base seq, serializer) and covers the writes up to
``upto``; a checkpoint with the same key and a seq at or above ``upto`` has
exactly those writes in its history (see the storage model in ``base.py``).
``origin`` changes when a session is reset, so a restarted session never meets
old entries, and the serializer is part of the key, so a flow never receives
objects of a type it did not register.

The cache owns its values, and nothing a caller or a node does in place may
reach them. Each entry says what kind of items it holds: ``SCALARS``
(immutable: a new list of them is enough), ``READ_ONLY`` (dicts and lists made
read-only by :func:`~flows.engine.values.read_only`: shared with the fields that
allow it, copied for the rest) or ``MUTABLE`` (anything else: copied on the way
out).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable

MUTABLE, READ_ONLY, SCALARS = 0, 1, 2


class ReadCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[int, Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, upto: int) -> tuple[int, Any, int] | None:
        """``(upto, value, kind)`` for ``key`` if it covers no write past ``upto``.

        ``value`` is the cache's own (a tuple for lists): read it, never hand it out.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] > upto:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, upto: int, value: tuple | str, kind: int) -> None:
        """Stores a value the cache now owns: no one else may hold its mutable items."""
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current[0] > upto:
                return
            self._entries[key] = (upto, value, kind)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
