"""A store written from the ``Store`` protocol alone, to show it is enough: plain dicts, no TTL.

The conformance suite runs on it as the ``dict-store`` backend.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flows.engine.checkpointers import Checkpointer, Lease, LeaseGrant, StoredCheckpoint, StoredWrite, WriteRange
from flows.engine.checkpointers.delta import window_start
from flows.engine.checkpointers.store import lease_lost
from flows.engine.checkpointers.types import CHUNK


@dataclass
class Session:
    token: int = 0
    held_until: float | None = None  # None: free
    head: StoredCheckpoint | None = None
    last_seq: int = 0
    records: dict[str, StoredCheckpoint] = field(default_factory=dict)
    writes: dict[tuple[str, int], StoredWrite] = field(default_factory=dict)  # (field, seq) -> write


class DictStore:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.tokens = itertools.count(1)

    def _held(self, lease: Lease) -> Session:
        session = self.sessions.get(lease.session_id)
        if session is None or session.token != lease.token or session.held_until is None:
            raise lease_lost(lease)
        return session

    async def try_acquire(self, session_id: str, lease_seconds: float, take_over: bool = False) -> LeaseGrant | None:
        session = self.sessions.setdefault(session_id, Session())
        now = time.monotonic()
        if session.held_until is not None and session.held_until > now and not take_over:
            return None
        session.token, session.held_until = next(self.tokens), now + lease_seconds
        return LeaseGrant(session.token, session.head, session.last_seq)

    async def renew(self, lease: Lease, lease_seconds: float) -> bool:
        session = self.sessions.get(lease.session_id)
        if session is None or session.token != lease.token or session.held_until is None:
            return False
        session.held_until = time.monotonic() + lease_seconds
        return True

    async def release(self, lease: Lease) -> None:
        session = self.sessions.get(lease.session_id)
        if session is not None and session.token == lease.token:
            session.held_until = None

    async def write(self, lease: Lease, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> None:
        session = self._held(lease)
        session.records[record.checkpoint_id] = record
        session.writes.update({(w.field, w.seq): w for w in writes})
        session.head, session.last_seq = record, record.seq

    async def delete_ids(self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange],
                         head: StoredCheckpoint, add_writes: Sequence[StoredWrite] = ()) -> None:
        session = self._held(lease)
        for checkpoint_id in ids:
            session.records.pop(checkpoint_id, None)
        self._drop(session, drop_writes)
        session.writes.update({(w.field, w.seq): w for w in add_writes})
        session.head = head

    async def keep_only(
        self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange], head: StoredCheckpoint
    ) -> None:
        session, kept = self._held(lease), set(ids)
        session.records = {key: record for key, record in session.records.items() if key in kept}
        self._drop(session, drop_writes)
        session.head = head

    @staticmethod
    def _drop(session: Session, ranges: Iterable[WriteRange]) -> None:
        spans = list(ranges)
        session.writes = {
            key: w for key, w in session.writes.items()
            if not any((name is None or name == w.field) and lo <= w.seq <= hi for name, lo, hi in spans)
        }

    async def delete_session(self, lease: Lease) -> None:
        if lease.session_id in self.sessions:  # already gone: deleting twice is not an error
            self._held(lease)
            del self.sessions[lease.session_id]

    async def read_head(self, session_id: str) -> StoredCheckpoint | None:
        session = self.sessions.get(session_id)
        return None if session is None else session.head

    async def read_checkpoint(self, session_id: str, checkpoint_id: str) -> StoredCheckpoint | None:
        session = self.sessions.get(session_id)
        return None if session is None else session.records.get(checkpoint_id)

    async def read_writes(self, session_id: str, ranges: Mapping[str, tuple[int, int]]) -> list[StoredWrite]:
        session = self.sessions.get(session_id)
        found: list[StoredWrite] = []
        for name, (lo, hi) in ranges.items():
            stored = session.writes.values() if session else ()
            mine = sorted((w for w in stored if w.field == name), key=lambda w: w.seq)
            covering = [w for w in mine if w.op == CHUNK and window_start(lo) <= w.seq < lo]
            found += covering[-1:] + [w for w in mine if lo <= w.seq <= hi]
        return found

    async def read_chain(self, session_id: str, start: StoredCheckpoint, limit: int) -> list[StoredCheckpoint]:
        records = self.sessions[session_id].records if session_id in self.sessions else {}
        chain = [start]
        while len(chain) < limit and chain[-1].parent_id in records:
            chain.append(records[chain[-1].parent_id])
        return chain

    async def read_records_from(self, session_id: str, min_seq: int) -> list[StoredCheckpoint]:
        session = self.sessions.get(session_id)
        return sorted((r for r in session.records.values() if r.seq >= min_seq), key=lambda r: r.seq) if session else []

    async def count(self, session_id: str) -> int:
        session = self.sessions.get(session_id)
        return len(session.records) if session else 0

    async def session_ids(self) -> list[str]:
        return sorted(key for key, session in self.sessions.items() if session.records)

    async def stats(self) -> dict[str, int]:
        sessions = [s for s in self.sessions.values() if s.records]
        records = [r for s in sessions for r in s.records.values()]
        writes = [w for s in sessions for w in s.writes.values()]
        total = sum(len(r.blob) for r in records) + sum(len(w.blob) for w in writes)
        return {"sessions": len(sessions), "checkpoints": len(records), "writes": len(writes), "bytes": total}


def dict_checkpointer(**options: Any) -> Checkpointer:
    """A checkpointer on a new, empty :class:`DictStore`."""
    return Checkpointer(DictStore(), **options)
