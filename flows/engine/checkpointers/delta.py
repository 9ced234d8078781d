"""Per-field deltas: what a step writes, and how writes fold back into values.

A field that only grew (a list with items appended, a string with text appended)
is written as ``extend`` with the new part; anything else as ``set``. Reading a
field folds its last ``set`` with the ``extend`` writes after it.
"""

from __future__ import annotations

from typing import Any, Iterable

from .types import EXTEND, SET, Change

_MISSING = object()


def diff(old: Any, new: Any) -> Change:
    """The write that turns ``old`` into ``new`` (``old`` may be ``MISSING``)."""
    if old is not _MISSING:
        old_type = type(old)
        if old_type is type(new) and old_type in (list, str) and old:
            cut = len(old)
            if len(new) >= cut and new[:cut] == old:
                return Change(EXTEND, new[cut:])
    return Change(SET, new)


def appended(old: Any, new: Any, update: Any) -> Change:
    """The write for ``new = old + update`` made by an appending reducer, in O(len(update))."""
    if type(old) is type(new) is type(update) and type(new) in (list, str) and old:
        return Change(EXTEND, update)
    return Change(SET, new)


def fold(writes: Iterable[tuple[str, Any]]) -> Any:
    """Folds ``(op, value)`` pairs, oldest first, starting at a ``set``; linear in the writes."""
    base: Any = _MISSING
    parts: list[Any] = []
    for op, item in writes:
        if op == SET:
            base, parts = item, []
        elif base is _MISSING:
            raise ValueError("an extend write has no set write before it")
        else:
            parts.append(item)
    if not parts:
        return base
    if type(base) is str:
        return base + "".join(parts)
    value = list(base)
    for part in parts:
        value.extend(part)
    return value


MISSING = _MISSING
