"""The ``Store`` protocol: the I/O a :class:`~.checkpointer.Checkpointer` needs, and nothing else.

A store keeps three things per session: its lease (who may write, with a
token that only grows), its checkpoint records (:class:`StoredCheckpoint`,
the head among them) and its field writes (:class:`StoredWrite`). Everything
else — deltas, serialisation, codecs, waiting for a busy session, forks,
materialisation, compaction, retention — is the checkpointer's, the same for
every store. docs/backends/writing-a-store.md walks through writing one.

Fencing: every method that changes a session takes the caller's
:class:`Lease` and must change nothing, raising :class:`LeaseLost` (see
:func:`lease_lost`), when the session's token is no longer ``lease.token``.
Each such method is atomic: all of it happens, or none.

Durability: once a fenced method or :meth:`Store.try_acquire` returns, what it
did must survive a crash of the store's server (as far as the server is
configured to), with two exceptions a store may commit lazily — not waiting
for its disk, as PostgreSQL's ``synchronous_commit = off`` does — because
losing them in a crash loses nothing but time:

* :meth:`Store.release`: a lost release leaves the lease to expire after
  ``lease_seconds``;
* a compaction, :meth:`Store.delete_ids` with no ``ids`` (only
  ``drop_writes`` and the ``add_writes`` chunks that replace them): a lost one
  leaves the writes uncompacted, and every read stays exact either way.

Even lazy, each stays atomic, and it may not be reordered after a later
durable change of the same session (a write-ahead log flushed by the next
durable commit keeps both properties). The lease's acquire is never lazy: a
lost acquire could hand the same token to two workers after a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from ..errors import LeaseLost
from .types import Lease, LeaseGrant, StoredCheckpoint, StoredWrite

#: A drop range: (field, or ``None`` for every field, lowest seq, highest seq), inclusive.
WriteRange = tuple[str | None, int, int]


def lease_lost(lease: Lease) -> LeaseLost:
    """The error a fenced store method raises when ``lease`` no longer holds its session."""
    return LeaseLost(f"session {lease.session_id!r}: this worker's lease was taken over; write refused")


#: Fields an SQL store reads in one query (each takes two ``SELECT``s joined
#: by ``UNION ALL``; SQLite refuses more than 500): wider states take several.
FIELDS_PER_READ = 64


def field_batches(ranges: Mapping[str, tuple[int, int]]) -> list[list[tuple[str, tuple[int, int]]]]:
    """``ranges`` in groups of at most :data:`FIELDS_PER_READ` fields, one query each."""
    items = list(ranges.items())
    return [items[start : start + FIELDS_PER_READ] for start in range(0, len(items), FIELDS_PER_READ)]


@runtime_checkable
class Store(Protocol):
    """Where a checkpointer's sessions live; every method is a coroutine."""

    # -- the lease ---------------------------------------------------------------

    async def try_acquire(self, session_id: str, lease_seconds: float, take_over: bool = False) -> LeaseGrant | None:
        """Takes the session's lease if it is free or expired (with ``take_over``, even if held)
        under a new, higher token; ``None`` when someone else holds a live lease.

        Returns the token, the head record and the highest seq the session ever
        wrote (it never goes down while the session exists). A session never
        seen before is created, empty.
        """
        ...

    async def renew(self, lease: Lease, lease_seconds: float) -> bool:
        """Extends the lease; ``False`` if it was taken over (the token changed)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Frees the lease if ``lease.token`` still holds it (not an error otherwise); may commit lazily."""
        ...

    # -- writing (fenced) ---------------------------------------------------------

    async def write(self, lease: Lease, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> None:
        """Stores ``record`` and ``writes``, makes ``record`` the head and refreshes the session's TTL."""
        ...

    async def delete_ids(self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange],
                         head: StoredCheckpoint, add_writes: Sequence[StoredWrite] = ()) -> None:
        """Deletes the records ``ids`` and the writes in ``drop_writes``, then stores
        ``add_writes`` (chunks that replace some of them), and makes ``head`` the head.

        Without ``ids`` it is a compaction (the same states in fewer writes),
        which may commit lazily (see the module's docstring)."""
        ...

    async def keep_only(
        self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange], head: StoredCheckpoint
    ) -> None:
        """Deletes every record not in ``ids`` and the writes in ``drop_writes``; ``head`` is the head."""
        ...

    async def delete_session(self, lease: Lease) -> None:
        """Deletes every record and write of the session, and its lease.

        A session already gone is not an error: a retried delete after a lost
        reply must succeed.
        """
        ...

    # -- reading ----------------------------------------------------------------

    async def read_head(self, session_id: str) -> StoredCheckpoint | None:
        """The head record; ``None`` for an unknown or expired session."""
        ...

    async def read_checkpoint(self, session_id: str, checkpoint_id: str) -> StoredCheckpoint | None:
        """One record by id; ``None`` when the session has no such checkpoint."""
        ...

    async def read_writes(self, session_id: str, ranges: Mapping[str, tuple[int, int]]) -> list[StoredWrite]:
        """The writes of each field with ``lo <= seq <= hi``, in seq order per field.

        Each field's are led by its ``chunk`` write that begins before ``lo``
        in ``lo``'s window (:func:`.delta.window_start`), if there is one: it
        may hold writes of the range.
        """
        ...

    async def read_chain(self, session_id: str, start: StoredCheckpoint, limit: int) -> list[StoredCheckpoint]:
        """``start`` and its ancestors, newest first, at most ``limit``; stops at a missing parent."""
        ...

    async def read_records_from(self, session_id: str, min_seq: int) -> list[StoredCheckpoint]:
        """Every record of the session with ``seq >= min_seq``, in seq order."""
        ...

    async def count(self, session_id: str) -> int:
        """How many checkpoints the session holds."""
        ...

    async def session_ids(self) -> list[str]:
        """Every live session with checkpoints (expired ones may be purged on the way)."""
        ...

    async def stats(self) -> dict[str, int]:
        """``{"sessions", "checkpoints", "writes", "bytes"}`` held by the store."""
        ...
