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

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from ..types import LeaseGrant, StoredCheckpoint
from .raw import dbapi_connection, driver_errors
from .statements import Statements

T = TypeVar("T")

#: What a script yields: a statement and its parameters.
Step = tuple[Any, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Result:
    rowcount: int
    rows: Sequence[Sequence[Any]]


#: A script returning a ``T`` (its value, once run).
Script = Generator[Step, Result, T]
#: Compiles a statement (once) and puts its parameters in the driver's style.
Binder = Callable[[Any, dict[str, Any]], tuple[str, Any]]


def stored_checkpoint(session_id: str, row: Sequence[Any]) -> StoredCheckpoint:
    """A checkpoint row (the store's column order) as a :class:`StoredCheckpoint`."""
    seq, checkpoint_id, parent_id, created_at, run_id, node, blob = row
    return StoredCheckpoint(
        session_id, checkpoint_id, int(seq), parent_id, float(created_at), run_id, node, bytes(blob)
    )


def acquire(
    sql: Statements, session_id: str, lease_seconds: float, take_over: bool = False
) -> Script[LeaseGrant | None]:
    """Takes the lease if free or expired (or, with ``take_over``, held), with a higher token; ``None`` if held.

    Each statement is atomic on its own: the ``UPDATE`` takes a free or
    expired lease with the next token (or the ``INSERT`` creates the session
    with its first one, doing nothing if it appeared meanwhile), and once the
    lease is ours nobody else writes, so the following read of the head is
    exact. Only with a TTL does it run as one transaction (see
    :meth:`SQLStore.try_acquire`): a session that outlived its TTL is
    emptied in the same transaction that takes it, so nobody sees it between.
    """
    params = {"sid": session_id, "ls": lease_seconds}
    taken = (yield sql.acquire_take_over if take_over else sql.acquire_update, params).rowcount == 1
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


def renew(sql: Statements, session_id: str, token: int, lease_seconds: float) -> Script[bool]:
    """Extends the lease; ``False`` if the token changed. One atomic statement."""
    result = yield sql.renew, {"sid": session_id, "token": token, "ls": lease_seconds}
    return result.rowcount == 1


def release(sql: Statements, session_id: str, token: int) -> Script[None]:
    """Frees the lease if the token still holds it: a session that never got a
    checkpoint goes, any other just has its lease cleared. Two single
    statements, each atomic; on PostgreSQL one, committed lazily (a release
    lost in a crash only leaves the lease to expire)."""
    params = {"sid": session_id, "token": token}
    if sql.release_lazy is not None:
        yield sql.release_lazy, params
        return
    if (yield sql.release_empty, params).rowcount == 0:
        yield sql.release, params


# ---------------------------------------------------------------------- running


def run_script(conn: Connection, steps: Script[T], bind: Binder, begin: str | None) -> T:
    """Runs ``steps`` on a DBAPI cursor (in a worker thread, or in SQLAlchemy's
    greenlet for an async driver's adapter), inside ``begin`` ... ``COMMIT``
    when ``begin`` is given."""
    cursor = dbapi_connection(conn).cursor()
    try:
        with driver_errors(conn, "script"):
            if begin is None:
                return _drive(cursor, steps, bind)
            cursor.execute(begin)
            try:
                value = _drive(cursor, steps, bind)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
            return value
    finally:
        cursor.close()


def _drive(cursor: Any, steps: Script[T], bind: Binder) -> T:
    try:
        statement, params = next(steps)
        while True:
            sql, args = bind(statement, params)
            cursor.execute(sql, args)
            rows = cursor.fetchall() if cursor.description else ()
            statement, params = steps.send(Result(cursor.rowcount, rows))
    except StopIteration as done:
        value: T = done.value  # the script's return value (StopIteration.value is typed Any)
        return value


async def run_script_aio(aio: Any, conn: Connection, steps: Script[T], bind: Binder, begin: str | None) -> T:
    """Runs ``steps`` on an ``aiosqlite.Connection``: one hop to its thread per
    statement (a query and its rows together)."""
    base = conn.dialect.loaded_dbapi.Error
    try:
        if begin is None:
            return await _drive_aio(aio, steps, bind)
        await aio.execute(begin)
        try:
            value = await _drive_aio(aio, steps, bind)
        except BaseException:
            await aio.execute("ROLLBACK")
            raise
        await aio.execute("COMMIT")
        return value
    except base as exc:
        raise DBAPIError.instance("script", None, exc, base, dialect=conn.dialect) from exc


async def _drive_aio(aio: Any, steps: Script[T], bind: Binder) -> T:
    try:
        statement, params = next(steps)
        while True:
            sql, args = bind(statement, params)
            if statement.is_select:
                result = Result(-1, list(await aio.execute_fetchall(sql, args)))
            else:
                result = Result((await aio.execute(sql, args)).rowcount, ())
            statement, params = steps.send(result)
    except StopIteration as done:
        value: T = done.value  # the script's return value (StopIteration.value is typed Any)
        return value
