"""A page of a session's history with what each checkpoint changed, old → new.

For timelines (the admin's, say). A page of ``k`` checkpoints costs a constant
number of reads whatever the history length: the page's metadata (one list),
the state just before the page (one materialisation), and the page's own
writes (one :meth:`Checkpointer.aread_writes`); values are then folded forward
in memory, oldest first. The values are the flow's own (how to show them as
text is the caller's business: ``flows.display`` does it for the admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .checkpointers.checkpointer import Checkpointer
from .checkpointers.delta import fold
from .checkpointers.types import SET, CheckpointMetadata
from .errors import CheckpointNotFound
from .serde import DEFAULT_SERIALIZER, JsonSerializer

_MISSING: Any = object()


@dataclass(frozen=True)
class FieldChange:
    """One field's change; ``written`` is what the checkpoint wrote (all of it, or what it appended)."""

    field: str
    op: str
    old: Any
    new: Any
    written: Any

    @property
    def is_new(self) -> bool:
        return self.old is _MISSING

    @property
    def is_append(self) -> bool:
        return self.op != SET and not self.is_new


@dataclass(frozen=True)
class HistoryEntry:
    metadata: CheckpointMetadata
    changes: list[FieldChange]


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    #: pass as ``before`` for the next (older) page; ``None`` on the last page
    next_before: str | None


async def ahistory(
    checkpointer: Checkpointer,
    session_id: str,
    *,
    serializer: JsonSerializer = DEFAULT_SERIALIZER,
    limit: int = 20,
    before: str | None = None,
) -> HistoryPage:
    """The newest ``limit`` checkpoints of the head's history (older than ``before``), with their changes."""
    metas = await checkpointer.alist(session_id, limit=limit + 1, before=before, serializer=serializer)
    page, older = metas[:limit], metas[limit:]
    if not page:
        return HistoryPage([], None)
    state: dict[str, Any] = {}
    if older:
        state = await checkpointer.amaterialise(older[0], serializer)
    elif page[-1].parent_id is not None:  # the oldest page of a pruned history
        try:
            parent = await checkpointer.aget_metadata(session_id, page[-1].parent_id, serializer=serializer)
        except CheckpointNotFound:
            parent = None
        state = await checkpointer.amaterialise(parent, serializer) if parent else {}
    writes = await _page_writes(checkpointer, serializer, session_id, page)
    entries = []
    for meta in reversed(page):
        changes = []
        for field, op, value in writes.get(meta.seq, ()):
            old = state.get(field, _MISSING)
            new = value if op == SET or old is _MISSING else fold([(SET, old), (op, value)])
            state[field] = new
            if field in meta.updated_fields:
                changes.append(FieldChange(field, op, old, new, value))
        entries.append(HistoryEntry(meta, changes))
    entries.reverse()
    return HistoryPage(entries, page[-1].checkpoint_id if older else None)


async def _page_writes(
    checkpointer: Checkpointer, serializer: JsonSerializer, session_id: str, page: list[CheckpointMetadata]
) -> dict[int, list[tuple[str, str, Any]]]:
    """The decoded writes of the page's checkpoints, by seq (one store read)."""
    seqs = {meta.seq for meta in page}
    fields = {name for meta in page for name in meta.bases}
    found = await checkpointer.aread_writes(session_id, fields, min(seqs), max(seqs), serializer)
    return {seq: writes for seq, writes in found.items() if seq in seqs}
