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


def fold_raw(writes: list[tuple[str, bytes]], loads: Any) -> Any:
    """Folds a field's serialised writes (oldest first, from its last ``set``).

    A list that grew by many ``extend`` writes is parsed as one JSON array
    instead of one parse per write: reading a long conversation stays cheap.
    """
    if (
        len(writes) > 2
        and writes[0][0] == SET
        and all(op != SET and raw[:1] == b"[" for op, raw in writes[1:])
        and writes[0][1][:1] == b"["
    ):
        parts = [raw[1:-1] for _, raw in writes if len(raw) > 2]
        return loads(b"[" + b",".join(parts) + b"]")
    return fold((op, loads(raw)) for op, raw in writes)


def extend_cached(prefix: Any, writes: list[tuple[str, bytes]], loads: Any) -> Any:
    """A cached list (as a tuple) or string, plus the ``extend`` writes after it."""
    if not writes:
        return list(prefix) if type(prefix) is tuple else prefix
    if type(prefix) is str:
        return prefix + "".join(loads(raw) for _, raw in writes)
    if all(raw[:1] == b"[" for _, raw in writes):
        parts = [raw[1:-1] for _, raw in writes if len(raw) > 2]
        return [*prefix, *loads(b"[" + b",".join(parts) + b"]")] if parts else list(prefix)
    return fold([(SET, list(prefix))] + [(op, loads(raw)) for op, raw in writes])


MISSING = _MISSING
