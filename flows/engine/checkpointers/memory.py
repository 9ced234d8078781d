"""In-process checkpoints: for development, tests and single-process use.

State is lost when the process ends. Writes are stored encoded, like every
other backend, so a node that mutates the live state in place cannot reach
saved checkpoints, and :meth:`InMemoryCheckpointer.get_stats` counts real bytes.
:class:`InMemoryStore` is also the smallest complete example of the
:class:`~.store.Store` protocol.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .checkpointer import Checkpointer
from .delta import window_start
from .store import WriteRange, lease_lost
from .types import CHUNK, Lease, LeaseGrant, StoredCheckpoint, StoredWrite


@dataclass
class _FieldLog:
    seqs: list[int] = field(default_factory=list)
    writes: list[StoredWrite] = field(default_factory=list)
    #: the seqs of the ``chunk`` writes among them: a read finds the one covering
    #: its start without walking back over a window of plain writes
    chunks: list[int] = field(default_factory=list)


@dataclass
class _Session:
    records: dict[str, StoredCheckpoint] = field(default_factory=dict)
    fields: dict[str, _FieldLog] = field(default_factory=dict)
    head: StoredCheckpoint | None = None
    last_seq: int = 0
    token: int = 0
    holder: int | None = None
    lease_until: float = 0.0
    touched: float = 0.0


class InMemoryStore:
    """Sessions in a dict, safe across the tasks and threads of one process."""

    def __init__(self, ttl_seconds: float | None = None) -> None:
        self.ttl_seconds = ttl_seconds
        self._sessions: dict[str, _Session] = {}
        self._mutex = threading.Lock()
        # one counter for every session: a token is never reused, even after a reset
        self._tokens = itertools.count(1)

    def get_stats(self) -> dict[str, int]:
        """Sessions, checkpoints, writes and bytes held (encoded writes and metadata)."""
        with self._mutex:
            self._expire_all()
            sessions = self._sessions.values()
            writes = [w for s in sessions for log in s.fields.values() for w in log.writes]
            records = [r for s in sessions for r in s.records.values()]
            return {
                "sessions": len(self._sessions),
                "checkpoints": len(records),
                "writes": len(writes),
                "bytes": sum(len(w.blob) for w in writes) + sum(len(r.blob) for r in records),
            }

    # -- helpers (call with the mutex held) ------------------------------------

    def _live(self, session_id: str) -> _Session | None:
        session = self._sessions.get(session_id)
        if session is not None and self._expired(session, time.monotonic()):
            del self._sessions[session_id]
            return None
        return session

    def _expired(self, session: _Session, now: float) -> bool:
        return (
            self.ttl_seconds is not None
            and session.touched + self.ttl_seconds < now
            and (session.holder is None or session.lease_until < now)
        )

    def _expire_all(self) -> None:
        now = time.monotonic()
        for sid in [sid for sid, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[sid]

    def _held(self, lease: Lease) -> _Session:
        session = self._sessions.get(lease.session_id)
        if session is None or session.token != lease.token or session.holder is None:
            raise lease_lost(lease)
        return session

    # -- the Store protocol ----------------------------------------------------

    async def try_acquire(self, session_id: str, lease_seconds: float, take_over: bool = False) -> LeaseGrant | None:
        now = time.monotonic()
        with self._mutex:
            session = self._live(session_id)
            if session is None:
                session = self._sessions[session_id] = _Session(touched=now)
            elif session.holder is not None and session.lease_until > now and not take_over:
                return None
            session.token = session.holder = next(self._tokens)
            session.lease_until = now + lease_seconds
            return LeaseGrant(session.token, session.head, session.last_seq)

    async def renew(self, lease: Lease, lease_seconds: float) -> bool:
        with self._mutex:
            session = self._sessions.get(lease.session_id)
            if session is None or session.token != lease.token or session.holder is None:
                return False
            session.lease_until = time.monotonic() + lease_seconds
            return True

    async def release(self, lease: Lease) -> None:
        with self._mutex:
            session = self._sessions.get(lease.session_id)
            if session is None or session.token != lease.token:
                return
            session.holder = None
            if not session.records:
                del self._sessions[lease.session_id]

    async def write(self, lease: Lease, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> None:
        with self._mutex:
            session = self._held(lease)
            session.records[record.checkpoint_id] = record
            for write in writes:
                log = session.fields.get(write.field)
                if log is None:
                    log = session.fields[write.field] = _FieldLog()
                log.seqs.append(write.seq)
                log.writes.append(write)
                if write.op == CHUNK:
                    log.chunks.append(write.seq)
            session.head = record
            session.last_seq = record.seq
            session.touched = time.monotonic()

    async def read_head(self, session_id: str) -> StoredCheckpoint | None:
        with self._mutex:
            session = self._live(session_id)
            return None if session is None else session.head

    async def read_checkpoint(self, session_id: str, checkpoint_id: str) -> StoredCheckpoint | None:
        with self._mutex:
            session = self._live(session_id)
            return None if session is None else session.records.get(checkpoint_id)

    async def read_writes(
        self, session_id: str, ranges: Mapping[str, tuple[int, int]]
    ) -> list[StoredWrite]:
        with self._mutex:
            session = self._live(session_id)
            if session is None:
                return []
            found: list[StoredWrite] = []
            for name, (lo, hi) in ranges.items():
                log = session.fields.get(name)
                if log is None:
                    continue
                start = bisect.bisect_left(log.seqs, lo)
                stop = bisect.bisect_right(log.seqs, hi)
                if log.chunks:  # the chunk that may cover lo: the last one in [window start, lo)
                    at = bisect.bisect_left(log.chunks, lo)
                    if at and log.chunks[at - 1] >= window_start(lo):
                        found.append(log.writes[bisect.bisect_left(log.seqs, log.chunks[at - 1])])
                found.extend(log.writes[start:stop])
            return found

    async def read_chain(self, session_id: str, start: StoredCheckpoint, limit: int) -> list[StoredCheckpoint]:
        with self._mutex:
            session = self._live(session_id)
            if session is None:
                return []
            chain = [start]
            record = start
            while len(chain) < limit and record.parent_id is not None:
                parent = session.records.get(record.parent_id)
                if parent is None:
                    break
                chain.append(parent)
                record = parent
            return chain

    async def read_records_from(self, session_id: str, min_seq: int) -> list[StoredCheckpoint]:
        with self._mutex:
            session = self._live(session_id)
            if session is None:
                return []
            return sorted((r for r in session.records.values() if r.seq >= min_seq), key=lambda r: r.seq)

    async def count(self, session_id: str) -> int:
        with self._mutex:
            session = self._live(session_id)
            return 0 if session is None else len(session.records)

    async def delete_ids(
        self,
        lease: Lease,
        ids: Iterable[str],
        *,
        drop_writes: Iterable[WriteRange],
        head: StoredCheckpoint,
        add_writes: Sequence[StoredWrite] = (),
    ) -> None:
        with self._mutex:
            session = self._held(lease)
            for checkpoint_id in ids:
                session.records.pop(checkpoint_id, None)
            self._replace_writes(session, drop_writes, add_writes)
            session.head = head
            session.touched = time.monotonic()

    async def keep_only(
        self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange], head: StoredCheckpoint
    ) -> None:
        with self._mutex:
            session = self._held(lease)
            kept = set(ids)
            session.records = {key: record for key, record in session.records.items() if key in kept}
            self._replace_writes(session, drop_writes, ())
            session.head = head
            session.touched = time.monotonic()

    @staticmethod
    def _replace_writes(session: _Session, drop: Iterable[WriteRange], add: Sequence[StoredWrite]) -> None:
        ranges = list(drop)
        for name, log in list(session.fields.items()):
            spans = [(lo, hi) for f, lo, hi in ranges if f is None or f == name]
            if not spans:
                continue
            for lo, hi in spans:  # the log is in seq order: each span is one slice (no scan of the whole log)
                start, stop = bisect.bisect_left(log.seqs, lo), bisect.bisect_right(log.seqs, hi)
                del log.seqs[start:stop], log.writes[start:stop]
                start, stop = bisect.bisect_left(log.chunks, lo), bisect.bisect_right(log.chunks, hi)
                del log.chunks[start:stop]
            if not log.seqs:
                del session.fields[name]
        for write in add:
            log = session.fields.setdefault(write.field, _FieldLog())
            at = bisect.bisect_left(log.seqs, write.seq)
            log.seqs.insert(at, write.seq)
            log.writes.insert(at, write)
            if write.op == CHUNK:
                bisect.insort(log.chunks, write.seq)

    async def delete_session(self, lease: Lease) -> None:
        with self._mutex:
            if lease.session_id not in self._sessions:
                return  # already gone: deleting twice is not an error
            self._held(lease)
            del self._sessions[lease.session_id]

    async def session_ids(self) -> list[str]:
        with self._mutex:
            self._expire_all()
            return [sid for sid, s in self._sessions.items() if s.records]

    async def stats(self) -> dict[str, int]:
        return self.get_stats()


class InMemoryCheckpointer(Checkpointer):
    """Checkpoints in this process's memory (an :class:`InMemoryStore`).

    Accepts every :class:`Checkpointer` option; ``max_checkpoints_per_session``
    and ``ttl_seconds`` are the seed's.
    """

    store: InMemoryStore

    def __init__(
        self,
        max_checkpoints_per_session: int | None = None,
        ttl_seconds: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            InMemoryStore(ttl_seconds),
            max_checkpoints_per_session=max_checkpoints_per_session,
            ttl_seconds=ttl_seconds,
            **options,
        )

    def get_stats(self) -> dict[str, int]:
        """Sessions, checkpoints, writes and bytes held (encoded writes and metadata)."""
        return self.store.get_stats()
