"""Engine options and connection setup per database family.

* SQLite: driver-level autocommit with explicit ``BEGIN IMMEDIATE`` for
  writes, WAL journal, ``synchronous=NORMAL`` by default, a busy timeout.
* PostgreSQL, MySQL/MariaDB: driver-level autocommit (one round trip for a
  single statement; longer transactions are spelled out), no rollback when a
  connection returns to the pool. MySQL sessions are UTC and READ COMMITTED
  and accept multi-statement queries (the one-round-trip save); each
  connection notes its server's ``max_allowed_packet`` (see :mod:`..packets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import StaticPool

from .. import packets

SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
#: Seconds to wait for a server to accept a connection before failing with
#: CheckpointerUnavailable (instead of the operating system's minutes), unless
#: the URL or ``connect_args`` say otherwise; the key each driver reads.
CONNECT_TIMEOUT = 10
_CONNECT_TIMEOUT_KEY = {
    "psycopg2": "connect_timeout",
    "asyncpg": "timeout",
    "pymysql": "connect_timeout",
    "aiomysql": "connect_timeout",
}
#: PyMySQL waits for a reply forever by default, even for the server's
#: greeting: a server that accepts connections but never answers would hang a
#: worker thread. No statement of the store legitimately waits this long.
READ_TIMEOUT = 60


def connect_timeout(driver: str, connect_args: Mapping[str, Any], url_query: Mapping[str, Any]) -> float:
    """The connect timeout in force for ``driver``, in seconds."""
    key = _CONNECT_TIMEOUT_KEY.get(driver)
    if key is None:
        return CONNECT_TIMEOUT
    value = connect_args.get(key, url_query.get(key, CONNECT_TIMEOUT))
    return float(value)


@dataclass(frozen=True)
class EngineSettings:
    family: str
    driver: str
    is_async: bool
    memory: bool
    busy_timeout: float
    sqlite_synchronous: str


def engine_options(
    settings: EngineSettings,
    *,
    echo: bool,
    pool_size: int,
    max_overflow: int,
    connect_args: dict[str, Any],
    url_query: Mapping[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """``create_engine()`` keyword arguments for one family and driver."""
    kwargs: dict[str, Any] = {"echo": echo}
    args = dict(connect_args)
    timeout_key = _CONNECT_TIMEOUT_KEY.get(settings.driver)
    if timeout_key is not None and timeout_key not in url_query:
        args.setdefault(timeout_key, CONNECT_TIMEOUT)
    if settings.driver == "pymysql" and "read_timeout" not in url_query:
        args.setdefault("read_timeout", READ_TIMEOUT)
    if settings.family == "sqlite":
        # Autocommit at the driver: transactions are begun explicitly
        # (BEGIN IMMEDIATE for writes), see ``Database.transaction``.
        args.setdefault("isolation_level", None)
        args.setdefault("timeout", settings.busy_timeout)
        if not settings.is_async:
            args.setdefault("check_same_thread", False)
        if settings.memory:
            kwargs["poolclass"] = StaticPool
    else:
        if settings.family == "mysql":
            from pymysql.constants import CLIENT

            # FOUND_ROWS (as SQLAlchemy sets it): rowcount is rows matched.
            # MULTI_STATEMENTS: a checkpoint is saved in one round trip
            # (see writers.py); only the store's own SQL is ever sent.
            args.setdefault("client_flag", CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS)
        # Driver-level autocommit: a single statement (every read, the
        # PostgreSQL step) is its own transaction, one round trip; longer
        # transactions are begun explicitly (see ``Database.transaction``). The
        # pool's rollback-on-return is skipped in autocommit (PyMySQL
        # would send a ROLLBACK per checkout otherwise, aiosqlite hop to
        # its thread for one).
        kwargs["isolation_level"] = "AUTOCOMMIT"
    kwargs["skip_autocommit_rollback"] = True
    if not settings.memory:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = max_overflow
    kwargs["connect_args"] = args
    kwargs.update(extra)
    return kwargs


def configure(sync_engine: Engine, settings: EngineSettings) -> None:
    """Sets every new connection up: SQLite pragmas, MySQL session variables."""
    family, memory, busy_ms = settings.family, settings.memory, int(settings.busy_timeout * 1000)
    synchronous = settings.sqlite_synchronous

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if family == "sqlite":
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                if not memory:
                    # WAL: readers never block the writer nor it them.
                    # synchronous=NORMAL (default): no fsync per commit (a
                    # power cut may lose the last commits, never corrupts).
                    # See docs/backends/sql.md.
                    _set_wal(cursor)
                    cursor.execute(f"PRAGMA synchronous = {synchronous}")
            elif family == "mysql":
                # Epoch arithmetic on NOW() is exact only in UTC (no DST
                # folds). READ COMMITTED takes no gap locks, so two workers
                # creating different new sessions never deadlock on a gap.
                cursor.execute("SET time_zone = '+00:00'")
                cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                # Fixed for the session from now on: saves are measured against it.
                record.info[packets.LIMIT_KEY] = packets.read_limit(cursor)
        finally:
            cursor.close()


def _set_wal(cursor: Any) -> None:
    """Switches the file to WAL (a persistent property of the file).

    The switch needs the file to itself and fails at once, without waiting,
    while another connection writes. That connection is then one of ours that
    switched it already, or one that will see it switched by the next of ours
    to connect; the journal mode never affects correctness, only concurrency.
    """
    import sqlite3  # both SQLite drivers raise sqlite3's errors

    try:
        cursor.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
