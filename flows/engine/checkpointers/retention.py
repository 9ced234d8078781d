"""Retention arithmetic: which stored writes no kept checkpoint reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .store import WriteRange
from .types import CheckpointMetadata


def runs(seqs: Sequence[int]) -> Iterable[tuple[int, int]]:
    """Collapses sorted integers into inclusive ``(lo, hi)`` runs."""
    start = prev = None
    for seq in seqs:
        if prev is not None and seq == prev + 1:
            prev = seq
            continue
        if start is not None:
            yield start, prev  # type: ignore[misc]
        start = prev = seq
    if start is not None:
        yield start, prev  # type: ignore[misc]


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _gaps(intervals: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi]`` not covered by sorted, merged ``intervals``."""
    gaps, cursor = [], lo
    for start, end in intervals:
        if start > cursor:
            gaps.append((cursor, min(start - 1, hi)))
        cursor = max(cursor, end + 1)
    if cursor <= hi:
        gaps.append((cursor, hi))
    return [(a, b) for a, b in gaps if a <= b]


def unneeded_writes(kept: Sequence[CheckpointMetadata], *, upto: int) -> list[WriteRange]:
    """The writes no kept checkpoint reads: outside every field's needed seqs."""
    needed: dict[str, list[tuple[int, int]]] = {}
    for meta in kept:
        for name, base in meta.bases.items():
            needed.setdefault(name, []).append((base, meta.seq))
    per_field = {name: _merge(spans) for name, spans in needed.items()}
    union = _merge(span for spans in per_field.values() for span in spans)
    ranges: list[WriteRange] = [(None, lo, hi) for lo, hi in _gaps(union, 0, upto)]
    for name, spans in per_field.items():
        for lo, hi in union:
            ranges.extend((name, a, b) for a, b in _gaps([s for s in spans if s[1] >= lo and s[0] <= hi], lo, hi))
    return ranges
