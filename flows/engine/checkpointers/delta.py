"""Per-field deltas: what a step writes, and how writes fold back into values.

A field that only grew (a list with items appended, a string with text appended)
is written as ``extend`` with the new part; anything else as ``set``. Reading a
field folds its last ``set`` with the ``extend`` writes after it.

Chunks keep reading a long history cheap: once a window of ``SPAN`` seqs is
complete, each field's run of consecutive ``extend`` writes in it is replaced by
one ``chunk`` write, stored at the run's first seq. A chunk holds the JSON
bodies of its extends joined into one array (or string), and a header line of
``[seq, start, end]`` byte offsets per extend, so a read that needs only some of
them (an older checkpoint, a reader whose cache covers the first ones) slices
the bytes without parsing them. A run of extends always belongs to one line of
history (a fork writes every field in full), so a chunk never mixes branches.
Readers widen a range's lower bound to its window's start (:func:`window_start`)
so they find a chunk that begins before the range but covers part of it.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable
from typing import Any

from ..serde import flat_array, loads_items, loads_json
from .readcache import READ_ONLY, SCALARS, Items
from .types import CHUNK, EXTEND, SET, Change

#: seqs per compaction window
SPAN = 64

_MISSING = object()


def diff(old: Any, new: Any) -> Change:
    """The write that turns ``old`` into ``new`` (``old`` may be ``MISSING``).

    A list counts as grown only when its first items are the very objects of
    ``old`` (``1 == 1.0 == True`` must not pass for "unchanged"); a list changed
    in place (``new is old``) cannot be diffed and is written whole.
    """
    kind = type(old)
    if kind is type(new) and (kind is list or kind is str) and old and old is not new:
        cut = len(old)
        if kind is str:
            if len(new) > cut and new.startswith(old):  # an unchanged string is set: no empty extends to fold
                return Change(EXTEND, new[cut:])
        elif len(new) >= cut and all(map(operator.is_, new, old)):
            return Change(EXTEND, new[cut:])
    return Change(SET, new)


def appended(old: Any, new: Any) -> Change:
    """The write of an appending reducer's ``new = old + update``, in O(len(update))."""
    kind = type(old)
    if kind is type(new) and kind in (list, str) and old and new is not old and len(new) >= len(old):
        return Change(EXTEND, new[len(old):])
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

    A list that grew by many ``extend`` writes is parsed as one JSON array, and
    a string as one JSON string, instead of one parse per write: reading a long
    conversation stays cheap.
    """
    if len(writes) > 2 and writes[0][0] == SET and all(op != SET for op, _ in writes[1:]):
        first = writes[0][1][:1]
        if first == b"[" and all(raw[:1] == b"[" for _, raw in writes[1:]):
            parts = [raw[1:-1] for _, raw in writes if len(raw) > 2]
            return loads(b"[" + b",".join(parts) + b"]")
        if first == b'"' and all(raw[:1] == b'"' for _, raw in writes[1:]):
            # a JSON string's escapes never span its quotes: the bodies join into one string
            return loads(b'"' + b"".join(raw[1:-1] for _, raw in writes) + b'"')
    return fold((op, loads(raw)) for op, raw in writes)


def read_only_items(writes: list[tuple[str, bytes]]) -> tuple[list[Any], int] | None:
    """A list field's serialised writes (oldest first, from its last ``set``) as
    read-only items and their kind (:mod:`.readcache`), for the read cache.

    Each write is parsed on its own, by :func:`~flows.engine.serde.loads_items`:
    no joined copy of a long conversation's bytes, and no pass over its items
    after parsing. ``None`` when a write is not a :func:`~flows.engine.serde.flat_array`
    (the caller folds and adopts the items then).
    """
    if writes[0][0] != SET or any(op == SET for op, _ in writes[1:]):
        return None
    return _flat_items([raw for _, raw in writes])


def _flat_items(arrays: list[bytes]) -> tuple[list[Any], int] | None:
    if not all(map(flat_array, arrays)):
        return None
    items: list[Any] = []
    for raw in arrays:
        items.extend(loads_items(raw))
    # no array inside and no object at all: only scalars
    return items, READ_ONLY if any(b"{" in raw for raw in arrays) else SCALARS


def extend_cached(
    prefix: Items | str,
    writes: list[tuple[str, bytes]],
    loads: Callable[[bytes], Any],
    adopt: Callable[[list[Any]], tuple[list[Any], int]],
    grow: Callable[[Items, list[Any]], Items],
) -> tuple[Items | str, int | None]:
    """A cached list (:class:`~.readcache.Items`) or string plus the ``extend`` writes after it.

    ``adopt`` turns newly decoded items into the cache's own and says what kind
    of items they are, ``grow`` appends them to the cached list (see
    :mod:`.readcache`). Returns the extended value and that kind, ``None`` when
    no item was added.
    """
    if not writes:
        return prefix, None
    if type(prefix) is str:
        return prefix + "".join(loads(raw) for _, raw in writes), None
    assert isinstance(prefix, Items)
    if all(op != SET and raw[:1] == b"[" for op, raw in writes):
        flat = _flat_items([raw for _, raw in writes])
        if flat is None:
            parts = [raw[1:-1] for _, raw in writes if len(raw) > 2]
            flat = adopt(loads(b"[" + b",".join(parts) + b"]") if parts else [])
        return grow(prefix, flat[0]), flat[1]
    items, kind = adopt(fold([(SET, prefix.copy())] + [(op, loads(raw)) for op, raw in writes]))
    return Items(items, len(items)), kind


def window_start(seq: int) -> int:
    """The first seq of ``seq``'s compaction window."""
    return seq - seq % SPAN


def may_cover(chunk_seq: int, seq: int) -> bool:
    """Whether a chunk stored at ``chunk_seq`` can hold ``seq``'s extend (it ends within its window)."""
    return chunk_seq <= seq < window_start(chunk_seq) + SPAN


def chunk(extends: list[tuple[int, bytes]]) -> bytes | None:
    """One chunk of a field's consecutive extends ``(seq, raw JSON)``, oldest first.

    ``None`` when they are not all lists or all strings (nothing to gain).
    """
    opening = extends[0][1][:1]
    if opening not in (b"[", b'"') or any(raw[:1] != opening for _, raw in extends):
        return None
    separator = b"," if opening == b"[" else b""
    header: list[list[int]] = []
    bodies: list[bytes] = []
    position = 0
    for seq, raw in extends:
        body = raw[1:-1]
        if body and bodies and separator:
            bodies.append(separator)
            position += 1
        header.append([seq, position, position + len(body)])
        if body:
            bodies.append(body)
            position += len(body)
    closing = b"]" if opening == b"[" else b'"'
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + opening + b"".join(bodies) + closing


def pieces(op: str, seq: int, raw: bytes, lo: int, hi: int) -> list[tuple[int, str, bytes]]:
    """What one stored write holds for seqs ``lo..hi``: ``(seq, op, raw)`` pieces, oldest first.

    A plain write is itself or nothing; a chunk gives one ``extend`` of what it
    holds in that range (at the range's last seq in it).
    """
    if op != CHUNK:
        return [(seq, op, raw)] if lo <= seq <= hi else []
    if lo <= seq and window_start(seq) + SPAN - 1 <= hi:  # all of it: a chunk ends within its window
        return [(hi, EXTEND, raw.partition(b"\n")[2])]
    inside, data = _chunk_parts(raw, lo, hi)
    if not inside:
        return []
    return [(inside[-1][0], EXTEND, _slice(data, inside))]


def chunk_writes(raw: bytes, lo: int, hi: int) -> list[tuple[int, bytes]]:
    """A chunk's extends with ``lo <= seq <= hi``, one ``(seq, raw)`` each."""
    inside, data = _chunk_parts(raw, lo, hi)
    return [(part[0], _slice(data, [part])) for part in inside]


def _chunk_parts(raw: bytes, lo: int, hi: int) -> tuple[list[list[int]], bytes]:
    header, _, data = raw.partition(b"\n")
    return [part for part in loads_json(header) if lo <= part[0] <= hi], data


def _slice(data: bytes, parts: list[list[int]]) -> bytes:
    """The parts' items (or text) as one JSON value; ``data`` is the whole chunk's."""
    filled = [part for part in parts if part[2] > part[1]]
    if not filled:
        return data[:1] + data[-1:]
    return data[:1] + data[1 + filled[0][1] : 1 + filled[-1][2]] + data[-1:]


MISSING = _MISSING
