"""A small LRU of folded list and string fields, so reading a long
conversation's state costs what changed since the last read, not its length.

Safe without invalidation because stored writes never change: an entry is keyed
by (session, origin, field, serializer), holds the field's value from its base
seq (its last ``set``) and covers the writes up to ``upto``; a checkpoint with
the same key and base and a seq at or above ``upto`` has exactly those writes
in its history (see the storage model in ``checkpointer.py``). One entry per
field, the newest read: a field ``set`` at every step (a router's ``intent``)
replaces its entry instead of adding one per step and pushing the
conversations out of the LRU.
``origin`` changes when a session is reset, so a restarted session never meets
old entries, and the serializer is part of the key, so a flow never receives
objects of a type it did not register.

A list field's value is :class:`Items`: the first ``n`` items of a list only
the cache ever appends to, so a read that finds a few new items appends them
(:meth:`ReadCache.grow`) instead of copying the whole conversation into a new
tuple; an entry made earlier still means its own first ``n`` items, which never
change.

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
from collections.abc import Hashable
from typing import Any

MUTABLE, READ_ONLY, SCALARS = 0, 1, 2


class Items:
    """A cached list: the first ``n`` items of ``items``, a list the cache owns and only appends to."""

    __slots__ = ("items", "n")

    def __init__(self, items: list[Any], n: int) -> None:
        self.items = items
        self.n = n

    def copy(self) -> list[Any]:
        """A new list of the items (the caller's own)."""
        return self.items[: self.n]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Items) and self.copy() == other.copy()

    __hash__ = None  # type: ignore[assignment]  # mutable underneath

    def __repr__(self) -> str:
        return f"Items({self.copy()!r})"


class ReadCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[int, Any, int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, base: int, upto: int) -> tuple[int, Any, int] | None:
        """``(upto, value, kind)`` for ``key`` if it holds the value from ``base`` and
        covers no write past ``upto``.

        ``value`` is the cache's own (:class:`Items` for lists): read it, never hand it out.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[3] != base or entry[0] > upto:
                return None
            self._entries.move_to_end(key)
            return entry[:3]

    def grow(self, prefix: Items, added: list[Any]) -> Items:
        """``prefix`` followed by ``added`` (items the cache now owns), in O(len(added))
        when nobody appended to ``prefix``'s list since; a copy otherwise."""
        with self._lock:
            if len(prefix.items) == prefix.n:
                prefix.items.extend(added)
                return Items(prefix.items, prefix.n + len(added))
        return Items(prefix.copy() + added, prefix.n + len(added))

    def put(self, key: Hashable, base: int, upto: int, value: Items | str | tuple[Any, ...], kind: int) -> None:
        """Stores a value the cache now owns (no one else may hold its mutable items),
        unless the entry for ``key`` covers a later write."""
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current[0] > upto:
                return
            self._entries[key] = (upto, value, kind, base)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
