"""Running compiled statements on the driver's own cursor.

SQLAlchemy's execution and result machinery costs more per statement and per
row than SQLite itself, and than a loopback round trip to a server; the hot
paths (reads, the checkpoint save) compile their statements once and run them
on the DBAPI (or aiosqlite) connection. Driver errors are wrapped the way
SQLAlchemy wraps them, so :class:`~.database.Database` translates both alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, ResourceClosedError


def dbapi_connection(conn: Connection) -> DBAPIConnection:
    """The DBAPI connection under ``conn``. SQLAlchemy types it as optional
    (a pooled connection that was closed or detached has none); one that
    ``conn`` holds always has it."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise ResourceClosedError("the pooled connection has no DBAPI connection (closed or detached)")
    return raw


def driver_connection(conn: Connection) -> Any:
    """The driver's own connection under ``conn`` (for an async driver, the
    one SQLAlchemy's DBAPI adapter wraps); optional in SQLAlchemy's types as
    :func:`dbapi_connection` is."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise ResourceClosedError("the pooled connection has no driver connection (closed or detached)")
    return driver


@contextmanager
def driver_errors(conn: Connection, statement: str) -> Iterator[None]:
    """Wraps the raw driver's errors as SQLAlchemy does (invalidating the
    connection on a disconnect), for code that uses the DBAPI connection."""
    dialect = conn.dialect
    base = dialect.loaded_dbapi.Error
    try:
        yield
    except base as exc:
        disconnect = dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if disconnect:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, base, connection_invalidated=disconnect, dialect=dialect
        ) from exc


def fetch(conn: Connection, sql: str, args: Any) -> list[Any]:
    """The rows of ``sql`` (in the driver's paramstyle) on a DBAPI cursor."""
    cursor = dbapi_connection(conn).cursor()
    try:
        with driver_errors(conn, sql):
            cursor.execute(sql, args)
            return list(cursor.fetchall())
    finally:
        cursor.close()


async def aio_fetch(aio: Any, conn: Connection, sql: str, args: Any) -> list[Any]:
    """The rows of ``sql`` on an ``aiosqlite.Connection``: one hop to its thread."""
    base = conn.dialect.loaded_dbapi.Error
    try:
        return list(await aio.execute_fetchall(sql, args))
    except base as exc:
        raise DBAPIError.instance(sql, None, exc, base, dialect=conn.dialect) from exc
