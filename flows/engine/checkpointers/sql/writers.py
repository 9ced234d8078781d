"""Saving one checkpoint: the hot path, written once per database family.

Each writer stores a record and its field writes atomically, fenced by the
lease token, and reports whether the fence held (``False``: nothing written).
They differ only in how few round trips and how little client work it takes:

* PostgreSQL — one statement (data-modifying CTEs). With psycopg2, which
  would have the server plan it on every execution, it is ``PREPARE``d once
  per connection and then ``EXECUTE``d.
* MySQL/MariaDB — one round trip: the whole transaction (``START
  TRANSACTION`` ... ``COMMIT``) is sent as one multi-statement query; the
  inserts only happen if the fencing ``UPDATE`` matched (``ROW_COUNT()``).
  A query over the server's ``max_allowed_packet`` is refused before it is
  sent (:mod:`..packets`).
* SQLite — the transaction on the driver's own connection (``sqlite3`` in a
  worker thread, or ``aiosqlite`` on the loop) with statements compiled once:
  in-process, SQLAlchemy's execution machinery (and, for aiosqlite, its
  DBAPI adaptation, several thread hops per statement) would cost more than
  SQLite itself.
* Anything else — the same transaction through SQLAlchemy Core.

Errors raised by the raw driver are wrapped like SQLAlchemy's own, so
:class:`Database` translates them the same way (disconnects included).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError

from .. import packets
from ..types import StoredCheckpoint, StoredWrite
from .database import Database
from .raw import dbapi_connection, driver_connection, driver_errors
from .statements import NOW, Statements

#: ``write(conn, token, record, writes) -> fenced`` (``False``: nothing written).
Writer = Callable[[Connection, int, StoredCheckpoint, Sequence[StoredWrite]], bool]
#: ``await save(token, record, writes) -> fenced``: a writer bound to its database.
Saver = Callable[[int, StoredCheckpoint, Sequence[StoredWrite]], Awaitable[bool]]


def make_saver(db: Database, sql: Statements) -> Saver:
    """The fastest correct way to save a checkpoint on ``db``."""
    if db.driver == "aiosqlite":
        return _aiosqlite_saver(db, sql)
    if db.family == "postgresql":
        writer = _postgres_writer(db, sql)
    elif db.family == "mysql":
        writer = _mysql_writer(db, sql)
    elif db.driver == "pysqlite":
        writer = _sqlite_writer(db, sql)
    else:
        writer = _core_writer(db, sql)

    async def save(token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
        return await db.run(lambda conn: writer(conn, token, record, writes))

    return save


def _record_args(record: StoredCheckpoint, blob: Any) -> tuple[Any, ...]:
    return (record.seq, record.checkpoint_id, record.parent_id, record.created_at, record.run_id, record.node, blob)


# ---------------------------------------------------------------------- PostgreSQL


def _postgres_writer(db: Database, sql: Statements) -> Writer:
    statement = sql.write_cte
    assert statement is not None

    def params(token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> dict[str, Any]:
        return {
            "sid": record.session_id,
            "token": token,
            "seq": record.seq,
            "cid": record.checkpoint_id,
            "parent": record.parent_id,
            "created": record.created_at,
            "run": record.run_id,
            "node": record.node,
            "blob": record.blob,
            "fields": [write.field for write in writes],
            "ops": [write.op for write in writes],
            "blobs": [write.blob for write in writes],
        }

    if db.driver != "psycopg2":

        def write(conn: Connection, token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
            # One statement, so atomic by itself in autocommit: one round trip, on
            # the DBAPI cursor (asyncpg's adapter prepares it once per connection).
            text, args = db.bind(statement, params(token, record, writes))
            with driver_errors(conn, text), closing(dbapi_connection(conn).cursor()) as cursor:
                cursor.execute(text, args)
                row = cursor.fetchone()
            assert row is not None  # SELECT count(*) returns one row
            return bool(row[0] == 1)

        return write

    # psycopg2 interpolates parameters client-side, so the server would parse
    # and plan the CTE on every step; a prepared statement does that once per
    # connection. Its name is unique per table prefix.
    names: list[str] = []
    text = _numbered(statement.text, names)
    name = f"flows_write_{zlib.crc32(text.encode()):08x}"
    prepare = f"PREPARE {name} AS {text}"
    execute = f"EXECUTE {name}({', '.join(f'%({n})s' for n in names)})"

    def write_prepared(conn: Connection, token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
        info = conn.connection.info
        raw = dbapi_connection(conn)
        # closing() does what psycopg2's cursor does on exit (close it): SQLAlchemy's DBAPICursor declares no __exit__
        with driver_errors(conn, execute), closing(raw.cursor()) as cursor:
            if name not in info:
                cursor.execute(prepare)
                info[name] = True
            cursor.execute(execute, params(token, record, writes))
            row = cursor.fetchone()
            assert row is not None  # SELECT count(*) returns one row
            return bool(row[0] == 1)

    return write_prepared


def _numbered(text: str, names: list[str]) -> str:
    """Replaces ``:name`` parameters with ``$1, $2, ...`` (one number per name)."""
    import re

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<![:\w]):(\w+)", number, text)


# ---------------------------------------------------------------------- MySQL


#: MySQL's "Column cannot be null": how a fenced save's record INSERT fails.
_BAD_NULL = 1048


def _mysql_writer(db: Database, sql: Statements) -> Writer:
    """The whole save in one multi-statement round trip.

    The record's ``session_id`` is ``IF(ROW_COUNT() = 1, ?, NULL)``: when the
    fencing ``UPDATE`` just before matched no row, the INSERT fails on the
    NOT NULL column, MySQL runs none of the statements after it (no writes, no
    ``COMMIT``), and the transaction is rolled back. Guarding with plain
    ``VALUES`` this way is markedly cheaper for InnoDB than ``INSERT ...
    SELECT ... WHERE`` on a flag.
    """
    quote = db.dialect.identifier_preparer.format_table
    s, c, w = (quote(t) for t in (sql.tables.sessions, sql.tables.checkpoints, sql.tables.writes))
    hex_blobs = db.needs_hex_blobs
    blob = "UNHEX(%s)" if hex_blobs else "%s"
    head = (
        "START TRANSACTION;"
        f"UPDATE {s} SET head_seq = %s, head_id = %s, last_seq = %s, updated_at = {NOW['mysql']}"
        " WHERE session_id = %s AND lease_token = %s AND lease_until IS NOT NULL;"
        f"INSERT INTO {c} (session_id, seq, checkpoint_id, parent_id, created_at, run_id, node, `blob`)"
        f" VALUES (IF(ROW_COUNT() = 1, %s, NULL), %s, %s, %s, %s, %s, %s, {blob});"
    )
    row = f"(%s, %s, %s, %s, {blob})"
    queries: dict[int, tuple[str, int]] = {}

    def query(count: int) -> tuple[str, int]:
        """The multi-statement text for ``count`` writes, and its number of results."""
        found = queries.get(count)
        if found is None:
            inserts = ""
            if count:
                values = ", ".join([row] * count)
                inserts = f"INSERT INTO {w} (session_id, field, seq, op, `blob`) VALUES {values};"
            found = queries[count] = (head + inserts + "COMMIT", 5 if count else 4)
        return found

    encode: Callable[[bytes], str | bytes] = (lambda data: data.hex()) if hex_blobs else (lambda data: data)

    def write(conn: Connection, token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
        sid = record.session_id
        text, results = query(len(writes))
        args: list[Any] = [record.seq, record.checkpoint_id, record.seq, sid, token, sid]
        args += _record_args(record, encode(record.blob))
        for item in writes:
            args += (sid, item.field, item.seq, item.op, encode(item.blob))
        pooled = conn.connection
        packets.check_fits(sid, text, args, pooled.info.get(packets.LIMIT_KEY), driver_connection(conn).escape)
        raw = dbapi_connection(conn)
        error = conn.dialect.loaded_dbapi.Error
        cursor = raw.cursor()
        try:
            with driver_errors(conn, text):
                try:
                    cursor.execute(text, args)
                    for _ in range(results - 1):
                        cursor.nextset()
                    return True
                except error as exc:
                    # A statement failed: those after it did not run, so the
                    # transaction is still open on the connection.
                    if not conn.invalidated:
                        _rollback(raw)
                    if _is_fenced(exc):
                        return False
                    raise
        finally:
            cursor.close()

    return write


def _is_fenced(exc: BaseException) -> bool:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return bool(args) and args[0] == _BAD_NULL and "session_id" in str(args[1:])


def _rollback(raw: DBAPIConnection) -> None:
    cursor = raw.cursor()
    try:
        cursor.execute("ROLLBACK")
    finally:
        cursor.close()


# ---------------------------------------------------------------------- SQLite


class _SQLiteStatements:
    """The write transaction's SQL, compiled once (qmark parameters)."""

    def __init__(self, db: Database, sql: Statements) -> None:
        quote = db.dialect.identifier_preparer.format_table
        # The host's clock as a parameter: SQLite's clock is the host's, and
        # evaluating julianday('now') costs more than the rest of the UPDATE.
        self.fence = (
            f"UPDATE {quote(sql.tables.sessions)} SET head_seq = ?, head_id = ?, last_seq = ?, updated_at = ?"
            " WHERE session_id = ? AND lease_token = ? AND lease_until IS NOT NULL"
        )
        self.insert_record = (
            f"INSERT INTO {quote(sql.tables.checkpoints)} "
            "(session_id, seq, checkpoint_id, parent_id, created_at, run_id, node, blob)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.insert_writes = (
            f"INSERT INTO {quote(sql.tables.writes)} (session_id, field, seq, op, blob) VALUES (?, ?, ?, ?, ?)"
        )

    def args(self, token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> tuple[Any, ...]:
        sid = record.session_id
        return (
            (record.seq, record.checkpoint_id, record.seq, time.time(), sid, token),
            (sid, *_record_args(record, record.blob)),
            [(sid, w.field, w.seq, w.op, w.blob) for w in writes],
        )


def _sqlite_writer(db: Database, sql: Statements) -> Writer:
    q = _SQLiteStatements(db, sql)

    def write(conn: Connection, token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
        fence_args, record_args, write_rows = q.args(token, record, writes)
        raw = dbapi_connection(conn)
        with driver_errors(conn, q.fence):
            raw.execute("BEGIN IMMEDIATE")
            try:
                if raw.execute(q.fence, fence_args).rowcount != 1:
                    raw.execute("ROLLBACK")
                    return False
                raw.execute(q.insert_record, record_args)
                if write_rows:
                    raw.executemany(q.insert_writes, write_rows)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
            return True

    return write


def _aiosqlite_saver(db: Database, sql: Statements) -> Saver:
    q = _SQLiteStatements(db, sql)

    async def write(aio: Any, conn: Connection, fence_args: Any, record_args: Any, write_rows: Any) -> bool:
        base = conn.dialect.loaded_dbapi.Error
        try:
            await aio.execute("BEGIN IMMEDIATE")
            try:
                if (await aio.execute(q.fence, fence_args)).rowcount != 1:
                    await aio.execute("ROLLBACK")
                    return False
                await aio.execute(q.insert_record, record_args)
                if write_rows:
                    await aio.executemany(q.insert_writes, write_rows)
            except BaseException:
                await aio.execute("ROLLBACK")
                raise
            await aio.execute("COMMIT")
            return True
        except base as exc:
            raise DBAPIError.instance(q.fence, None, exc, base, dialect=conn.dialect) from exc

    async def save(token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
        args = q.args(token, record, writes)
        return await db.run_on_driver(lambda aio, conn: write(aio, conn, *args))

    return save


# ---------------------------------------------------------------------- generic


def _core_writer(db: Database, sql: Statements) -> Writer:
    def write(conn: Connection, token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
        sid = record.session_id
        head = {"sid": sid, "token": token, "seq": record.seq, "cid": record.checkpoint_id}
        row = {
            "session_id": sid,
            "seq": record.seq,
            "checkpoint_id": record.checkpoint_id,
            "parent_id": record.parent_id,
            "created_at": record.created_at,
            "run_id": record.run_id,
            "node": record.node,
            "blob": record.blob,
        }
        rows = [{"session_id": sid, "field": w.field, "seq": w.seq, "op": w.op, "blob": w.blob} for w in writes]
        with db.transaction(conn, write=True):
            if conn.execute(sql.fence_write, head).rowcount != 1:
                raise _Fenced
            conn.execute(sql.insert_checkpoint, row)
            if rows:
                conn.execute(sql.insert_writes, rows)  # executemany: one multi-row INSERT
        return True

    def fenced(conn: Connection, token: int, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> bool:
        try:
            return write(conn, token, record, writes)
        except _Fenced:
            return False

    return fenced


class _Fenced(Exception):
    """Rolls the generic writer's transaction back when the fence did not hold."""
