"""``Checkpointer``: everything about checkpoints except where the bytes live.

One concrete class over a :class:`~.store.Store` (memory, Redis, SQL, the
Django ORM, or your own): deltas, serialisation and codecs, session leases
and waiting, forks, materialisation, compaction, retention and history live
here once, so every backend materialises the same states. The backends'
public classes (``InMemoryCheckpointer``, ``RedisCheckpointer``...) are this
class with their store built from their constructor's arguments.

Storage model
    Every checkpoint has a ``seq``, increasing within its session. A checkpoint
    stores one write per field it changed (``set`` or ``extend``) and, in its
    metadata, ``bases``: for each field, the ``seq`` of that field's last ``set``.
    The value of field ``f`` at checkpoint ``C`` folds the writes of ``f`` with
    ``bases[f] <= seq <= C.seq``. A checkpoint is written as a delta only when its
    parent is the newest checkpoint of the session; otherwise (a fork from an
    older checkpoint) it writes every field in full. So the seqs between a
    field's base and a checkpoint always belong to that checkpoint's own
    history, reads never replay superseded values, and storage grows with what
    changed rather than with the state's size times the number of steps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from ..errors import (
    CheckpointerUnavailable,
    CheckpointNotFound,
    LeaseLost,
    RunSuperseded,
    SerializationError,
    SessionBusy,
    StateTooLarge,
)
from ..ids import new_id, validate_session_id
from ..serde import DEFAULT_SERIALIZER, JsonSerializer, compact_json, loads_json, may_hold_tags
from ..values import NotReadOnly, ReadOnlyDict, flat_dicts, fresh, frozen, read_only
from . import delta
from .codec import BlobCodec
from .leases import KeepAlive
from .readcache import MUTABLE, READ_ONLY, SCALARS, Items, ReadCache
from .retention import runs, unneeded_writes
from .store import Store, WriteRange
from .types import (
    CHUNK,
    EXTEND,
    SET,
    Change,
    Checkpoint,
    CheckpointMetadata,
    Lease,
    PreparedPut,
    StoredCheckpoint,
    StoredWrite,
)

logger = logging.getLogger("flows.engine")
ON_BUSY_CHOICES = ("wait", "reject", "interrupt", "rollback")
#: the strategies that take a busy session over from the call holding it
TAKE_OVER = ("interrupt", "rollback")



def _adopt(items: list[Any]) -> tuple[list[Any], int]:
    """Items just decoded (nobody else holds the list) as the read cache's own, and
    their kind (:mod:`.readcache`)."""
    if frozen(items):
        return items, SCALARS
    if flat_dicts(items):
        return list(map(ReadOnlyDict, items)), READ_ONLY
    try:
        return list(map(read_only, items)), READ_ONLY
    except NotReadOnly:  # a set or a registered object somewhere: copied for every reader
        return fresh(items), MUTABLE


class Checkpointer:
    """Persists checkpoints in ``store`` and provides the per-session lock.

    Options shared by every backend:

    * ``max_checkpoints_per_session`` — history kept per session (see :meth:`aprune`);
    * ``ttl_seconds`` — a session not written for this long expires whole;
    * ``compress`` / ``encryption_keys`` — zlib and Fernet at rest (:class:`BlobCodec`);
      ``read_unencrypted`` also reads what was stored before encryption was on;
    * ``max_state_bytes`` — a write that would make the stored state larger fails;
    * ``lease_seconds`` — how long a lock outlives a silent (crashed) holder;
    * ``busy_timeout`` — how long ``on_busy="wait"`` waits before :class:`SessionBusy`;
    * ``read_cache_size`` — folded list/string fields kept in process (0 disables),
      so re-reading a long conversation reads only what changed (:mod:`.readcache`).
    """

    def __init__(
        self,
        store: Store,
        *,
        max_checkpoints_per_session: int | None = None,
        ttl_seconds: float | None = None,
        compress: bool = False,
        encryption_keys: Sequence[str | bytes] | None = None,
        read_unencrypted: bool = False,
        max_state_bytes: int | None = None,
        lease_seconds: float = 30.0,
        busy_timeout: float = 30.0,
        read_cache_size: int = 256,
    ) -> None:
        if max_checkpoints_per_session is not None and max_checkpoints_per_session < 1:
            raise ValueError("max_checkpoints_per_session must be at least 1")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.store = store
        self.max_checkpoints_per_session = max_checkpoints_per_session
        self.ttl_seconds = ttl_seconds
        self.max_state_bytes = max_state_bytes
        self.lease_seconds = lease_seconds
        self.busy_timeout = busy_timeout
        self.codec = BlobCodec(compress=compress, encryption_keys=encryption_keys, read_unencrypted=read_unencrypted)
        self._read_cache = ReadCache(read_cache_size) if read_cache_size > 0 else None
        #: the calls of this process holding a session: who to cancel when it is taken over
        self._holders: dict[str, tuple[Lease, asyncio.Task[Any]]] = {}
        self._retain_every = (
            max(1, math.ceil(max_checkpoints_per_session / 4)) if max_checkpoints_per_session else 0
        )

    # ------------------------------------------------------------------ locks

    async def aacquire(
        self, session_id: str, *, on_busy: str = "wait", timeout: float | None = None
    ) -> Lease:
        """Takes the session's lease, waiting (``"wait"``), failing at once (``"reject"``), or
        taking it from its holder (``"interrupt"``, ``"rollback"``).

        A holder that was taken over writes nothing more (its token is stale);
        one in this process is also cancelled at once (:meth:`alock`).
        """
        validate_session_id(session_id)
        if on_busy not in ON_BUSY_CHOICES:
            raise ValueError(f"on_busy must be one of {ON_BUSY_CHOICES}, not {on_busy!r}")
        limit = self.busy_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        pause = 0.001
        while True:
            grant = await self.store.try_acquire(session_id, self.lease_seconds)
            if grant is None and on_busy in TAKE_OVER:
                grant = await self.store.try_acquire(session_id, self.lease_seconds, take_over=True)
                if grant is not None:
                    self._supersede(session_id)
            if grant is not None:
                return Lease(session_id, grant.token, grant.head, grant.last_seq)
            remaining = deadline - time.monotonic()
            if on_busy == "reject" or remaining <= 0:
                raise SessionBusy(
                    f"session {session_id!r} is busy: another run holds it"
                    + ("" if on_busy == "reject" else f" (waited {limit:g}s)")
                )
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)

    async def arelease(self, lease: Lease) -> None:
        await self.store.release(lease)

    def _supersede(self, session_id: str) -> None:
        """The lease was taken from its holder: one in this process stops now."""
        held = self._holders.pop(session_id, None)
        if held is not None:
            lease, task = held
            lease.lost = lease.superseded = True
            loop = task.get_loop()
            if loop is asyncio.get_running_loop():
                task.cancel()
            else:  # a call on another thread's loop (the sync bridge)
                loop.call_soon_threadsafe(task.cancel)

    @asynccontextmanager
    async def alock(
        self, session_id: str, *, on_busy: str = "wait", timeout: float | None = None
    ) -> AsyncIterator[Lease]:
        """Holds the session for the block, renewing the lease while it lasts.

        A block taken over by a newer call (``on_busy="interrupt"``) in this
        process is cancelled at its next await and raises :class:`RunSuperseded`.
        """
        lease = await self.aacquire(session_id, on_busy=on_busy, timeout=timeout)
        keeper = KeepAlive(self.store.renew, lease, self.lease_seconds)
        task = asyncio.current_task()
        if task is not None:
            self._holders[session_id] = (lease, task)
        try:
            yield lease
        except asyncio.CancelledError:
            if lease.superseded and task is not None and task.uncancel() == 0:
                raise RunSuperseded(f"a newer call took session {session_id!r} over") from None
            raise
        finally:
            if self._holders.get(session_id, (None,))[0] is lease:
                del self._holders[session_id]
            keeper.stop()
            try:
                await self.store.release(lease)
            except CheckpointerUnavailable as error:
                # the lease expires by itself; the block's own outcome is what matters
                logger.warning("could not release the lease on session %r: %s", session_id, error)

    # ------------------------------------------------------------------ writing

    async def aput(self, lease: Lease, **checkpoint: Any) -> CheckpointMetadata:
        """Saves one checkpoint atomically under ``lease`` and makes it the head.

        Takes :meth:`prepare_put`'s arguments: ``state`` is the full state after
        the step and ``changes`` what the step changed; a fork (``parent`` is not
        the session's newest checkpoint) writes ``state`` in full, any other
        checkpoint only ``changes``. ``schedule`` is the engine's JSON-ready
        bookkeeping (already passed through ``serializer``).
        """
        return await self.commit_put(lease, self.prepare_put(lease, **checkpoint))

    def prepare_put(
        self,
        lease: Lease,
        *,
        parent: CheckpointMetadata | None,
        state: Mapping[str, Any],
        changes: Mapping[str, Change],
        run_id: str,
        node: str | None,
        step: int,
        next: Sequence[str] = (),
        interrupt: Sequence[dict[str, Any]] = (),
        schedule: Mapping[str, Any] | None = None,
        attempt: int = 1,
        dispatch_id: str | None = None,
        serializer: JsonSerializer = DEFAULT_SERIALIZER,
    ) -> PreparedPut:
        """The first half of :meth:`aput`, with no I/O: encodes the checkpoint and claims its seq.

        The checkpoints prepared under one lease must be committed
        (:meth:`commit_put`) in the order they were prepared; the next one may
        be prepared before the last is committed (``durability="async"``).
        """
        if lease.lost:
            raise LeaseLost(f"the lease on session {lease.session_id!r} was lost; not writing")
        seq = lease.last_seq + 1
        is_delta = parent is not None and parent.seq == lease.last_seq
        writes, bases, sizes = self._encode_writes(seq, parent if is_delta else None, state, changes, serializer)
        if self.max_state_bytes is not None:
            total = sum(sizes.values())
            if total > self.max_state_bytes:
                raise StateTooLarge(
                    f"session {lease.session_id!r}: the state would take {total} bytes, "
                    f"over max_state_bytes={self.max_state_bytes}"
                )
        created = time.time()
        # positional arguments: keywords cost a tenth of a microsecond each on every step
        meta = _metadata(
            lease.session_id, seq, created, parent, run_id, node, step, changes, attempt, dispatch_id, next,
            interrupt, bases, sizes, schedule,
        )
        record = StoredCheckpoint(
            lease.session_id, meta.checkpoint_id, seq, meta.parent_id, created, run_id, node,
            self._encode_meta(meta, serializer), head_status(meta),
        )
        lease.last_seq = seq
        return PreparedPut(meta, record, writes)

    async def commit_put(self, lease: Lease, put: PreparedPut) -> CheckpointMetadata:
        """The second half of :meth:`aput`: writes a prepared checkpoint and makes it the head."""
        meta, record = put.metadata, put.record
        try:
            await self.store.write(lease, record, put.writes)
        except BaseException:
            if lease.last_seq == record.seq:  # nothing prepared after it: its seq is free again
                lease.last_seq = record.seq - 1
            raise
        lease.head = record
        if record.seq % delta.SPAN == 0:
            await self._compact(lease, meta, record)
        keep = self.max_checkpoints_per_session
        if self._retain_every and keep is not None and meta.depth > keep and meta.depth % self._retain_every == 0:
            await self._retain(lease, keep=keep, cutoff=None)
        return meta

    def _encode_writes(
        self,
        seq: int,
        parent: CheckpointMetadata | None,
        state: Mapping[str, Any],
        changes: Mapping[str, Change],
        serializer: JsonSerializer,
    ) -> tuple[list[StoredWrite], dict[str, int], dict[str, int]]:
        """The checkpoint's writes with each field's base seq and stored size: only ``changes``
        on top of ``parent``, or (``parent`` ``None``: a first checkpoint or a fork) the whole ``state``."""
        if parent is not None:
            bases, sizes = dict(parent.bases), dict(parent.sizes)
            items: Iterable[tuple[str, Change]] = changes.items()
        else:
            bases, sizes = {}, {}
            items = ((name, Change(SET, value)) for name, value in state.items())
        writes: list[StoredWrite] = []
        encode = self.codec.encode
        for name, change in items:
            blob = encode(serializer.dumps(change.value))
            writes.append(StoredWrite(seq, name, change.op, blob))
            if change.op == SET:
                bases[name] = seq
                sizes[name] = len(blob)
            else:
                sizes[name] = sizes.get(name, 0) + len(blob)
        return writes, bases, sizes

    async def _compact(self, lease: Lease, meta: CheckpointMetadata, head: StoredCheckpoint) -> None:
        """Replaces each field's run of extends in the window just completed by one chunk (:mod:`.delta`).

        Only makes reads cheaper: when the store cannot be reached it is left
        for good, and every read stays exact either way.
        """
        hi = meta.seq - 1
        lo = delta.window_start(hi)
        decode, encode = self.codec.decode, self.codec.encode
        try:
            writes = await self.store.read_writes(lease.session_id, dict.fromkeys(meta.bases, (lo, hi)))
            runs_of: dict[str, list[StoredWrite]] = {}
            done: set[str] = set()  # compacted already (a retried call)
            for write in writes:
                run = runs_of.setdefault(write.field, [])
                if write.op == EXTEND:
                    run.append(write)
                else:  # a set starts the run over
                    run.clear()
                    if write.op == CHUNK:
                        done.add(write.field)
            drops: list[WriteRange] = []
            chunks: list[StoredWrite] = []
            for name, run in runs_of.items():
                if len(run) < 2 or name in done:
                    continue
                blob = delta.chunk([(write.seq, decode(write.blob)) for write in run])
                if blob is not None:
                    drops.append((name, run[0].seq, hi))
                    chunks.append(StoredWrite(run[0].seq, name, CHUNK, encode(blob)))
            if chunks:
                await self.store.delete_ids(lease, (), drop_writes=drops, head=head, add_writes=chunks)
        except CheckpointerUnavailable as error:
            logger.warning("could not compact session %r: %s", lease.session_id, error)

    async def aread_writes(
        self,
        session_id: str,
        fields: Iterable[str],
        lo: int,
        hi: int,
        serializer: JsonSerializer = DEFAULT_SERIALIZER,
    ) -> dict[int, list[tuple[str, str, Any]]]:
        """What the checkpoints at seqs ``lo..hi`` wrote, decoded: ``{seq: [(field, op, value)]}``.

        For views of a page of history (what each step changed), in one read.
        """
        validate_session_id(session_id)
        query = dict.fromkeys(fields, (lo, hi))
        decode, loads = self.codec.decode, serializer.loads
        by_seq: dict[int, list[tuple[str, str, Any]]] = {}
        for write in await self.store.read_writes(session_id, query) if query else []:
            if write.op == CHUNK:
                found = [(seq, EXTEND, raw) for seq, raw in delta.chunk_writes(decode(write.blob), lo, hi)]
            elif lo <= write.seq <= hi:
                found = [(write.seq, write.op, decode(write.blob))]
            else:
                continue
            for seq, op, raw in found:
                by_seq.setdefault(seq, []).append((write.field, op, loads(raw)))
        return by_seq

    # ------------------------------------------------------------------ reading

    async def aget_metadata(
        self,
        session_id: str,
        checkpoint_id: str | None = None,
        *,
        serializer: JsonSerializer = DEFAULT_SERIALIZER,
    ) -> CheckpointMetadata | None:
        """The head's metadata (or a given checkpoint's); ``None`` for an unknown session."""
        record = await self._find(session_id, checkpoint_id)
        return None if record is None else self.decode_metadata(record, serializer)

    async def aget(
        self,
        session_id: str,
        checkpoint_id: str | None = None,
        *,
        serializer: JsonSerializer = DEFAULT_SERIALIZER,
        shared: Collection[str] = (),
    ) -> Checkpoint | None:
        """A checkpoint with its full state: the head, or ``checkpoint_id`` (``shared``: see :meth:`amaterialise`)."""
        record = await self._find(session_id, checkpoint_id)
        if record is None:
            return None
        meta = self.decode_metadata(record, serializer)
        state, changes = await self._materialise(meta, serializer, with_changes=True, shared=shared)
        return Checkpoint(meta, state, changes)

    async def alist(
        self,
        session_id: str,
        *,
        limit: int = 10,
        before: str | None = None,
        serializer: JsonSerializer = DEFAULT_SERIALIZER,
    ) -> list[CheckpointMetadata]:
        """The head's history, newest first, following parents across forks.

        ``before`` starts the page just below that checkpoint (cursor paging).
        """
        if limit < 1:
            return []
        validate_session_id(session_id)
        if self.max_checkpoints_per_session is not None:
            limit = min(limit, self.max_checkpoints_per_session)
        if before is None:
            start = await self.store.read_head(session_id)
        else:
            cursor = await self.store.read_checkpoint(session_id, before)
            if cursor is None:
                raise CheckpointNotFound(f"no checkpoint {before!r} in session {session_id!r}")
            start = None
            if cursor.parent_id is not None:
                start = await self.store.read_checkpoint(session_id, cursor.parent_id)
        if start is None:
            return []
        records = await self.store.read_chain(session_id, start, limit)
        return [self.decode_metadata(record, serializer) for record in records]

    async def alist_all(
        self, session_id: str, *, serializer: JsonSerializer = DEFAULT_SERIALIZER
    ) -> list[CheckpointMetadata]:
        """Every checkpoint of the session, on every branch, oldest first (metadata only).

        One read of all the session's records: for views of its forks, not
        for a turn's hot path.
        """
        validate_session_id(session_id)
        records = await self.store.read_records_from(session_id, 0)
        return [self.decode_metadata(record, serializer) for record in records]

    async def _find(self, session_id: str, checkpoint_id: str | None) -> StoredCheckpoint | None:
        validate_session_id(session_id)
        if checkpoint_id is None:
            return await self.store.read_head(session_id)
        record = await self.store.read_checkpoint(session_id, checkpoint_id)
        if record is None:
            raise CheckpointNotFound(f"no checkpoint {checkpoint_id!r} in session {session_id!r}")
        return record

    async def amaterialise(
        self,
        meta: CheckpointMetadata,
        serializer: JsonSerializer = DEFAULT_SERIALIZER,
        *,
        shared: Collection[str] = (),
    ) -> dict[str, Any]:
        """The full state at ``meta``, in one read of its live writes.

        The list fields named in ``shared`` (the flow's appending fields) may hold
        read-only items shared with the read cache instead of copies
        (:mod:`flows.engine.values`), so a turn costs what changed, not the length
        of the conversation. Every other value is the caller's own.
        """
        state, _ = await self._materialise(meta, serializer, shared=shared)
        return state

    async def _materialise(
        self,
        meta: CheckpointMetadata,
        serializer: JsonSerializer,
        with_changes: bool = False,
        shared: Collection[str] = (),
    ) -> tuple[dict[str, Any], dict[str, Change]]:
        """Reads the live writes in one round trip; cached fields read only what is new.

        ``with_changes`` also returns this checkpoint's own writes (re-reading
        them, in the same round trip, for fields the cache already covers).
        """
        session_id, seq, cache = meta.session_id, meta.seq, self._read_cache
        wanted = set(meta.updated_fields) if with_changes else set()
        ranges: dict[str, tuple[int, int]] = {}
        hits: dict[str, tuple[int, Any, int]] = {}
        changes_only: set[str] = set()
        for name, base in meta.bases.items():
            hit = cache.get((session_id, meta.origin, name, serializer.signature), base, seq) if cache else None
            if hit is None:
                ranges[name] = (base, seq)
                continue
            hits[name] = hit
            if hit[0] < seq:
                ranges[name] = (hit[0] + 1, seq)
            elif name in wanted:
                ranges[name] = (seq, seq)  # for ``changes`` only: the cache holds it already
                changes_only.add(name)
        writes = await self.store.read_writes(session_id, ranges) if ranges else []
        decode, loads = self.codec.decode, serializer.loads
        by_field: dict[str, list[tuple[str, bytes]]] = {}
        changes: dict[str, Change] = {}
        for write in writes:
            name, raw = write.field, decode(write.blob)
            lo, hi = ranges[name]
            if write.op == CHUNK:
                if name in wanted and delta.may_cover(write.seq, seq):
                    for _, own in delta.chunk_writes(raw, seq, seq):
                        changes[name] = Change(EXTEND, loads(own))
                for _, op, piece in delta.pieces(CHUNK, write.seq, raw, lo, hi):
                    by_field.setdefault(name, []).append((op, piece))
            elif lo <= write.seq <= hi:
                if write.seq == seq and name in wanted:
                    changes[name] = Change(write.op, loads(raw))
                by_field.setdefault(name, []).append((write.op, raw))
        state: dict[str, Any] = {}
        for name, base in meta.bases.items():
            hit = hits.get(name)
            if hit is not None:
                news = [] if name in changes_only else by_field.get(name, [])
                assert cache is not None
                owned, added = delta.extend_cached(hit[1], news, loads, _adopt, cache.grow)
                kind = hit[2] if added is None else min(hit[2], added)
            elif name in by_field:
                adopted = delta.read_only_items(by_field[name]) if cache is not None else None
                value = adopted[0] if adopted else delta.fold_raw(by_field[name], loads)
                if cache is None or type(value) not in (list, str):
                    state[name] = value
                    continue
                if type(value) is str:
                    owned, kind = value, SCALARS
                else:
                    items, kind = adopted or _adopt(value)
                    # the cache's list may be the decoded one itself: the reader gets a copy then
                    owned = Items(items, len(items))
            else:
                continue  # pruned away by an older version; nothing to show
            if isinstance(owned, str):
                state[name] = owned
            elif kind == SCALARS or (kind == READ_ONLY and name in shared):
                state[name] = owned.copy()
            else:  # the reader's own copy: the value just decoded is one already (unless the cache kept it)
                state[name] = value if hit is None and owned.items is not value else fresh(owned.copy())
            if cache is not None:
                cache.put((session_id, meta.origin, name, serializer.signature), base, seq, owned, kind)
        return state, changes

    # ------------------------------------------------------------------ deleting

    async def adelete(self, session_id: str, checkpoint_id: str | None = None) -> int:
        """Deletes a whole session, or one checkpoint with every checkpoint built on it.

        Deleting a checkpoint on the head's history moves the head to its parent
        (an "undo"). Returns how many checkpoints were deleted.
        """
        async with self.alock(session_id) as lease:
            if checkpoint_id is None:
                count = await self.store.count(session_id)
                await self.store.delete_session(lease)
                lease.head, lease.last_seq = None, 0
                return count
            return await self.adelete_held(lease, checkpoint_id)

    async def adelete_held(self, lease: Lease, checkpoint_id: str) -> int:
        """:meth:`adelete` of one checkpoint and those built on it, under a lease the caller holds.

        The lease stays held: deleting the root empties the session, which is
        then taken again at once (:class:`SessionBusy` if someone was faster).
        """
        session_id = lease.session_id
        target = await self.store.read_checkpoint(session_id, checkpoint_id)
        if target is None:
            raise CheckpointNotFound(f"no checkpoint {checkpoint_id!r} in session {session_id!r}")
        doomed = {target.checkpoint_id}
        seqs = [target.seq]
        for record in await self.store.read_records_from(session_id, target.seq + 1):
            if record.parent_id in doomed:
                doomed.add(record.checkpoint_id)
                seqs.append(record.seq)
        head = lease.head
        if head is not None and head.checkpoint_id in doomed:
            head = None
            if target.parent_id is not None:
                head = await self.store.read_checkpoint(session_id, target.parent_id)
            if head is None:
                count = await self.store.count(session_id)
                await self._empty_held(lease)
                return count
        assert head is not None  # the session holds ``target``, so it has a head
        ranges: list[WriteRange] = [(None, lo, hi) for lo, hi in runs(sorted(seqs))]
        await self.store.delete_ids(lease, doomed, drop_writes=ranges, head=self._with_status(head))
        lease.head = head
        return len(doomed)

    async def _empty_held(self, lease: Lease) -> None:
        """Deletes the whole session, and takes its lease again (the same ``Lease``, a new token)."""
        await self.store.delete_session(lease)
        grant = await self.store.try_acquire(lease.session_id, self.lease_seconds)
        if grant is None:
            lease.lost = True
            raise SessionBusy(f"session {lease.session_id!r} was taken by another call while it was emptied")
        lease.token, lease.head, lease.last_seq = grant.token, grant.head, grant.last_seq

    async def aprune(
        self,
        session_id: str | None = None,
        *,
        keep: int | None = None,
        older_than: float | None = None,
    ) -> int:
        """Compacts history: keeps the newest ``keep`` checkpoints of the head's
        history and those younger than ``older_than`` seconds (both when given),
        drops the rest and every other branch. The head and its pending interrupt
        are always kept, and kept checkpoints materialise exactly as before:
        writes they build on stay even when their checkpoint goes.

        ``session_id=None`` prunes every session (and drops expired ones).
        Returns the number of checkpoints deleted.
        """
        if keep is None and older_than is None:
            keep = self.max_checkpoints_per_session
            if keep is None:
                raise ValueError("aprune needs keep= or older_than= (or max_checkpoints_per_session)")
        if keep is not None and keep < 1:
            raise ValueError("keep must be at least 1")
        cutoff = None if older_than is None else time.time() - older_than
        session_ids = [session_id] if session_id is not None else await self.store.session_ids()
        deleted = 0
        for sid in session_ids:
            async with self.alock(sid) as lease:
                deleted += await self._retain(lease, keep=keep, cutoff=cutoff)
        return deleted

    async def _retain(self, lease: Lease, *, keep: int | None, cutoff: float | None) -> int:
        head = lease.head
        if head is None:
            return 0
        chain = await self.store.read_chain(lease.session_id, head, keep or 2**31)
        kept = chain[:1]  # the head, always
        for record in chain[1:]:
            if cutoff is not None and record.created_at < cutoff:
                break
            kept.append(record)
        total = await self.store.count(lease.session_id)
        if total <= len(kept):
            return 0
        metas = [self.decode_metadata(record, full=False) for record in kept]
        ranges = unneeded_writes(metas, upto=lease.last_seq)
        await self.store.keep_only(
            lease, {record.checkpoint_id for record in kept}, drop_writes=ranges, head=self._with_status(head)
        )
        return total - len(kept)

    # ------------------------------------------------------------------ stats

    async def aget_stats(self) -> dict[str, int]:
        """Sessions, checkpoints, writes and bytes held by the store."""
        return await self.store.stats()

    # ------------------------------------------------------------------ encoding

    def _encode_meta(self, meta: CheckpointMetadata, serializer: JsonSerializer) -> bytes:
        # positional, to keep the per-step encoding small and fast; see decode_metadata
        payload = [
            meta.run_id,
            meta.node,
            meta.prev_node,
            meta.step,
            meta.updated_fields,
            meta.attempt,
            meta.dispatch_id,
            meta.next,
            serializer.to_jsonable(list(meta.interrupt)) if meta.interrupt else [],
            meta.depth,
            meta.origin,
            meta.bases,
            meta.sizes,
            meta.schedule,
        ]
        try:
            text = compact_json(payload)
        except ValueError as exc:  # NaN / infinity in a question's value, as in state
            raise SerializationError(f"cannot serialise a pending question's value: {exc}") from exc
        return self.codec.encode(text.encode())

    def decode_metadata(
        self, record: StoredCheckpoint, serializer: JsonSerializer = DEFAULT_SERIALIZER, *, full: bool = True
    ) -> CheckpointMetadata:
        """Decodes a stored record; ``full=False`` skips the user data (interrupts,
        scheduled Send payloads) for bookkeeping that only needs the storage fields."""
        raw = self.codec.decode(record.blob)
        (run_id, node, prev_node, step, updated, attempt, dispatch_id, next_nodes, interrupt,
         depth, origin, bases, sizes, schedule) = loads_json(raw)
        from_jsonable = serializer.from_jsonable if may_hold_tags(raw) else _as_is
        return CheckpointMetadata(  # positional, as in _metadata
            record.checkpoint_id,
            record.session_id,
            run_id,
            record.parent_id,
            dt.datetime.fromtimestamp(record.created_at, dt.UTC),
            node,
            prev_node,
            step,
            tuple(updated),
            attempt,
            dispatch_id,
            tuple(next_nodes),
            tuple(from_jsonable(interrupt)) if full else (),
            record.seq,
            depth,
            origin,
            bases,
            sizes,
            from_jsonable(schedule) if full else {},
        )

    def _with_status(self, record: StoredCheckpoint) -> StoredCheckpoint:
        """``record`` with its status filled in (records read back from a store may not carry it).

        Interrupt values may hold types registered on the engine only; when the
        default serializer cannot read them the question is still pending, and
        only "interrupted or running" is lost, so such a head reads as running.
        """
        if record.status:
            return record
        try:
            status = head_status(self.decode_metadata(record))
        except TypeError:
            status = "running" if self.decode_metadata(record, full=False).next else "idle"
        return replace(record, status=status)

    async def aclose(self) -> None:
        """Closes the store's connections, if it holds any."""
        close = getattr(self.store, "aclose", None)
        if close is not None:
            await close()


#: the former name, kept for code written against it
BaseCheckpointer = Checkpointer


def _as_is(value: Any) -> Any:
    """``from_jsonable`` of plain JSON just parsed (a tree nobody else holds)."""
    return value


def head_status(meta: CheckpointMetadata | None) -> str:
    """What a session whose head is ``meta`` is doing: ``idle``, ``running`` or ``interrupted``.

    The one place this is decided; a Django session row adds ``failed`` on top
    (``flows.sessions.session_status``).
    """
    if meta is None:
        return "idle"
    return "interrupted" if meta.interrupt else "running" if meta.next else "idle"


def _metadata(
    session_id: str,
    seq: int,
    created: float,
    parent: CheckpointMetadata | None,
    run_id: str,
    node: str | None,
    step: int,
    changes: Mapping[str, Change],
    attempt: int,
    dispatch_id: str | None,
    next: Sequence[str],
    interrupt: Sequence[dict[str, Any]],
    bases: Mapping[str, int],
    sizes: Mapping[str, int],
    schedule: Mapping[str, Any] | None,
) -> CheckpointMetadata:
    """A new checkpoint's metadata, as the child of ``parent`` (``None``: the session's first)."""
    checkpoint_id = new_id()
    # positional: keyword arguments cost a third more on every step
    if parent is None:
        parent_id = prev_node = None
        depth, origin = 1, checkpoint_id
    else:
        parent_id, prev_node, depth, origin = parent.checkpoint_id, parent.node, parent.depth + 1, parent.origin
    return CheckpointMetadata(
        checkpoint_id,
        session_id,
        run_id,
        parent_id,
        dt.datetime.fromtimestamp(created, dt.UTC),
        node,
        prev_node,
        step,
        tuple(changes),
        attempt,
        dispatch_id,
        tuple(next),
        tuple(interrupt),
        seq,
        depth,
        origin,
        bases,
        sizes,
        schedule or {},
    )
