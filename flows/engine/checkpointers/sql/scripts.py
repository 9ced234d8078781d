"""Lease primitives as statement scripts: the logic once, run by any driver.

A script is a generator that yields ``(statement, params)`` and receives each
statement's :class:`Result`. :meth:`Database.script` runs it on the driver's
own connection — a DBAPI cursor in a worker thread (sync drivers) or through
SQLAlchemy's adapter (asyncpg, aiomysql), or natively on ``aiosqlite`` — with
statements compiled once. These run on every call of the engine (take and
release the session), so they go without SQLAlchemy's execution machinery
and, where one statement is atomic on its own, without a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generator, Sequence

from ..types import LeaseGrant, StoredCheckpoint
from .statements import Statements

#: What a script yields: a statement and its parameters.
Step = tuple[Any, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Result:
    rowcount: int
    rows: Sequence[Sequence[Any]]


Script = Generator[Step, Result, Any]


def stored_checkpoint(session_id: str, row: Sequence[Any]) -> StoredCheckpoint:
    """A checkpoint row (the store's column order) as a :class:`StoredCheckpoint`."""
    seq, checkpoint_id, parent_id, created_at, run_id, node, blob = row
    return StoredCheckpoint(session_id, checkpoint_id, int(seq), parent_id, float(created_at), run_id, node, bytes(blob))


def acquire(sql: Statements, session_id: str, lease_seconds: float) -> Script:
    """Takes the lease if free or expired, with a higher token; ``None`` if held.

    Each statement is atomic on its own: the ``UPDATE`` takes a free or
    expired lease with the next token (or the ``INSERT`` creates the session
    with its first one, doing nothing if it appeared meanwhile), and once the
    lease is ours nobody else writes, so the following read of the head is
    exact. Only with a TTL does it run as one transaction (see
    :meth:`SQLCheckpointer._try_acquire`): a session that outlived its TTL is
    emptied in the same transaction that takes it, so nobody sees it between.
    """
    params = {"sid": session_id, "ls": lease_seconds}
    taken = (yield sql.acquire_update, params).rowcount == 1
    if not taken and (yield sql.acquire_insert, params).rowcount != 1:
        return None  # a live lease is held by someone else
    row = (yield sql.acquire_read, params).rows[0]
    token, last_seq, updated_at, db_now = row[:4]
    if sql.ttl_seconds is not None and updated_at + sql.ttl_seconds < db_now:
        yield sql.purge_writes, params
        yield sql.purge_checkpoints, params
        yield sql.reset_session, params
        return LeaseGrant(int(token), None, 0)
    head = None if row[4] is None else stored_checkpoint(session_id, row[4:])
    return LeaseGrant(int(token), head, int(last_seq))


def renew(sql: Statements, session_id: str, token: int, lease_seconds: float) -> Script:
    """Extends the lease; ``False`` if the token changed. One atomic statement."""
    result = yield sql.renew, {"sid": session_id, "token": token, "ls": lease_seconds}
    return result.rowcount == 1


def release(sql: Statements, session_id: str, token: int) -> Script:
    """Frees the lease if the token still holds it. Two single statements, each
    atomic: a session that never got a checkpoint goes, any other just has its
    lease cleared."""
    params = {"sid": session_id, "token": token}
    if (yield sql.release_empty, params).rowcount == 0:
        yield sql.release, params
