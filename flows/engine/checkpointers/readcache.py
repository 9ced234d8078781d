"""A small LRU of folded list and string fields, so reading a long
conversation's state costs what changed since the last read, not its length.

Safe without invalidation because stored writes never change: an entry is keyed
by (session, origin, field, base seq) and covers the writes up to ``upto``; a
checkpoint with the same key and a seq at or above ``upto`` has exactly those
writes in its history (see the storage model in ``base.py``). ``origin`` changes
when a session is reset, so a restarted session never meets old entries.
Cached lists are kept as tuples and copied out, so callers get their own lists;
the items themselves are shared and must not be mutated in place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable


class ReadCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, upto: int) -> tuple[int, Any] | None:
        """The entry for ``key`` if it covers no write past ``upto``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] > upto:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, upto: int, value: Any) -> None:
        if type(value) is list:
            value = tuple(value)
        elif type(value) is not str:
            return
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current[0] > upto:
                return
            self._entries[key] = (upto, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
