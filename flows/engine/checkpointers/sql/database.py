"""Engines, connections and errors: running store I/O without blocking the loop.

Every store operation is written once: a function of a synchronous
SQLAlchemy :class:`~sqlalchemy.Connection` (:meth:`Database.run`), a read
(:meth:`Database.fetch`) or a statement script (:meth:`Database.script`), the
last two compiled once and run on the driver's own cursor. How it runs
depends on the driver:

* a sync driver (``sqlite``, ``psycopg2``, ``pymysql``) runs it in a small
  dedicated thread pool, so a slow query or a held SQLite lock never blocks
  the event loop;
* an async driver (``asyncpg``, ``aiomysql``) runs it through
  :meth:`AsyncConnection.run_sync`, on the loop; ``aiosqlite``'s reads,
  scripts and saves use its own connection directly (one hop to its thread
  per statement). Async engines belong to the loop that created them, so
  there is one per running loop.

Failures are translated here: a server that cannot be reached (refused, wrong
password, dropped connection) becomes :class:`CheckpointerUnavailable` naming
the URL without its password; SQLite's "database is locked" after the busy
timeout becomes :class:`SessionBusy`; deadlocks are retried.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, ResourceClosedError

from ...errors import CheckpointerUnavailable, SessionBusy
from .engines import SQLITE_SYNCHRONOUS, EngineSettings, configure, connect_timeout
from .engines import engine_options as build_engine_options
from .raw import aio_fetch, fetch
from .scripts import Script, run_script, run_script_aio
from .urls import check_driver, family_of, is_memory_sqlite, needs_hex_blobs, redact, secrets

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")

#: Server error codes of deadlocks and serialisation failures: the server
#: rolled the transaction back, so running it again is safe.
_RETRY_CODES = {"40001", "40P01", 1213, 1205}
_ATTEMPTS = 3


class Database:
    """One database URL: its engines, its worker threads, and error translation."""

    def __init__(
        self,
        connection_string: str | URL,
        *,
        echo: bool = False,
        pool_size: int = 10,
        max_overflow: int = 10,
        busy_timeout: float = 30.0,
        connect_args: dict[str, Any] | None = None,
        engine_options: dict[str, Any] | None = None,
        sqlite_synchronous: str = "NORMAL",
    ) -> None:
        if sqlite_synchronous.upper() not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {SQLITE_SYNCHRONOUS}, not {sqlite_synchronous!r}")
        try:
            self.url = make_url(connection_string)
        except ArgumentError as exc:
            raise ValueError(f"SQLCheckpointer: invalid connection string: {exc}") from exc
        self.safe_url = redact(self.url)
        self.family = family_of(self.url)
        try:
            dialect_cls = self.url.get_dialect()
        except NoSuchModuleError as exc:
            raise ValueError(f"SQLCheckpointer: unknown driver in {self.safe_url}: {exc}") from exc
        self.driver = self.url.get_driver_name()
        self.backend = f"{self.url.get_backend_name()}+{self.driver}"
        self.is_async = bool(getattr(dialect_cls, "is_async", False))
        check_driver(dialect_cls, self.url)
        #: A dialect instance for compiling and quoting outside a connection.
        self.dialect = dialect_cls()
        self.memory = self.family == "sqlite" and is_memory_sqlite(self.url)
        self.busy_timeout = max(busy_timeout, 1.0)
        self.needs_hex_blobs = needs_hex_blobs(self.url)
        self._settings = EngineSettings(
            self.family, self.driver, self.is_async, self.memory, self.busy_timeout, sqlite_synchronous.upper()
        )
        self._engine_kwargs = build_engine_options(
            self._settings,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args=connect_args or {},
            url_query=self.url.query,
            extra=engine_options or {},
        )
        #: An async connect that has not finished by then has hung (a server
        #: that accepts but never answers; aiomysql has no read timeout).
        self._connect_guard = connect_timeout(self.driver, connect_args or {}, self.url.query) + 5
        self._threads = 1 if self.memory else pool_size + max_overflow
        self._sync_engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._async_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()
        #: Engines whose tables are known to exist ("any" once checked, as a
        #: file or server outlives engines; an in-memory SQLite database is
        #: per engine).
        self._prepared: set[Any] = set()
        self._compiled: dict[int, tuple[Any, Any]] = {}
        self.prepare: Callable[[Connection], None] | None = None

    def _engine(self) -> Engine:
        with self._guard:
            if self._sync_engine is None:
                engine = create_engine(self.url, **self._engine_kwargs)
                configure(engine, self._settings)
                self._sync_engine = engine
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="flows-sql")
            return self._sync_engine

    def _async_engine(self) -> AsyncEngine:
        from sqlalchemy.ext.asyncio import create_async_engine

        loop = asyncio.get_running_loop()
        with self._guard:
            engine = self._async_engines.get(loop)
            if engine is None:
                engine = create_async_engine(self.url, **self._engine_kwargs)
                configure(engine.sync_engine, self._settings)
                self._async_engines[loop] = engine
            return engine

    def current_engine(self) -> Engine:
        """The synchronous engine serving the caller: the one engine of a sync
        driver, or the running loop's async engine's ``sync_engine`` (for
        event listeners, inspection and tests)."""
        return self._async_engine().sync_engine if self.is_async else self._engine()

    # ------------------------------------------------------------------ running

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Runs ``work(connection)`` off the loop (sync driver) or on it (async).

        Once started, ``work`` runs to its end even if the caller is cancelled:
        its transaction either commits or rolls back, and the cancellation is
        re-raised afterwards, so no caller proceeds while it still runs.
        """
        await self._ensure_prepared()
        return await self._run_with_retry(lambda: self._start(work))

    async def run_on_driver(self, work: Callable[[Any, Connection], Awaitable[T]]) -> T:
        """Runs ``await work(driver_connection, connection)`` on an async
        driver's own connection (e.g. ``aiosqlite.Connection``), for hot paths
        where the DBAPI adaptation layer would cost more than the query. The
        same guarantees as :meth:`run`; ``work`` wraps its driver errors with
        :func:`driver_errors`."""
        await self._ensure_prepared()
        return await self._run_with_retry(lambda: asyncio.ensure_future(self._run_on_driver(work)))

    async def _ensure_prepared(self) -> None:
        if self.prepare is None:
            return
        key = id(self.current_engine()) if self.memory else "any"
        if key not in self._prepared:
            prepare = self.prepare
            await self._run_with_retry(lambda: self._start(prepare))
            self._prepared.add(key)

    async def _run_with_retry(self, start: Callable[[], asyncio.Future[T]]) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await _uncancellable(start())
            except DBAPIError as exc:
                if attempt < _ATTEMPTS and _error_code(exc) in _RETRY_CODES:
                    await asyncio.sleep(0.01 * attempt)
                    continue
                replacement = self._translate(exc)
                if replacement is None:
                    raise
                raise replacement from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _start(self, work: Callable[[Connection], T]) -> asyncio.Future[T]:
        if self.is_async:
            return asyncio.ensure_future(self._run_async(work))
        engine = self._engine()
        assert self._executor is not None
        return asyncio.wrap_future(self._executor.submit(self._run_sync, engine, work))

    def _run_sync(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        try:
            conn = engine.connect()
        except (DBAPIError, OSError) as exc:
            raise self.unavailable(exc) from exc
        with conn:
            return work(conn)

    async def _connect_async(self) -> AsyncConnection:
        engine = self._async_engine()
        conn = engine.connect()
        try:
            await asyncio.wait_for(conn.start(), self._connect_guard)
        except (DBAPIError, OSError) + self._driver_errors() as exc:
            raise self.unavailable(exc) from exc
        return conn

    async def _run_async(self, work: Callable[[Connection], T]) -> T:
        conn = await self._connect_async()
        try:
            return await conn.run_sync(work)
        finally:
            await conn.close()

    async def _run_on_driver(self, work: Callable[[Any, Connection], Awaitable[T]]) -> T:
        conn = await self._connect_async()
        try:
            raw = await conn.get_raw_connection()
            sync = conn.sync_connection
            if sync is None:  # set by start(), which _connect_async awaited
                raise ResourceClosedError("the async connection has no sync connection (not started)")
            return await work(raw.driver_connection, sync)
        finally:
            await conn.close()

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        """Errors an async driver raises unwrapped while connecting."""
        if self.driver == "asyncpg":
            import asyncpg

            return (asyncpg.PostgresError, asyncpg.InterfaceError)
        return ()

    # ------------------------------------------------------------------ reads

    def bind(self, statement: Any, params: dict[str, Any]) -> tuple[str, Any]:
        """``statement`` compiled once for this dialect, and ``params`` in the
        driver's own paramstyle (defaults of bound values filled in)."""
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            compiled = self._compiled[id(statement)] = (statement, statement.compile(dialect=self.dialect))
        form = compiled[1]
        values = form.construct_params(params)
        if form.positiontup is None:
            return form.string, values
        return form.string, tuple(values[name] for name in form.positiontup)

    async def fetch(self, statement: Any, params: dict[str, Any]) -> list[Any]:
        """The rows of a read-only ``statement``, as the driver returns them.

        Reads skip SQLAlchemy's result machinery (the statement is compiled
        once): for a long history that machinery costs more per row than the
        database. With aiosqlite the query and the fetch are one hop to its
        thread instead of four.
        """
        sql, args = self.bind(statement, params)
        if self.driver == "aiosqlite":
            return await self.run_on_driver(lambda aio, conn: aio_fetch(aio, conn, sql, args))
        return await self.run(lambda conn: fetch(conn, sql, args))

    async def script(self, make: Callable[[], Script[T]], *, transaction: bool = False) -> T:
        """Runs a statement script (see :mod:`.scripts`) on the driver's own
        connection, optionally as one write transaction; returns its value."""
        begin = "BEGIN IMMEDIATE" if self.family == "sqlite" else "BEGIN"
        if self.driver == "aiosqlite":
            return await self.run_on_driver(
                lambda aio, conn: run_script_aio(aio, conn, make(), self.bind, begin if transaction else None)
            )
        return await self.run(lambda conn: run_script(conn, make(), self.bind, begin if transaction else None))

    @contextmanager
    def transaction(self, conn: Connection, *, write: bool) -> Iterator[Connection]:
        """One transaction: committed at the end, rolled back on any error.

        Every driver runs in autocommit mode, so the transaction is spelled
        out: ``BEGIN`` ... ``COMMIT`` (or ``ROLLBACK``), no extra round trip
        for a driver-level begin or a pool reset. SQLite write transactions
        start with ``BEGIN IMMEDIATE``: the write lock is taken (or waited for,
        up to the busy timeout) at the start, never by upgrading a read lock
        mid-transaction, which SQLite refuses at once with "database is
        locked" instead of waiting.
        """
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write and self.family == "sqlite" else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")

    # ------------------------------------------------------------------ errors

    def unavailable(self, exc: BaseException) -> CheckpointerUnavailable:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        detail = reason[0] if reason else type(exc).__name__
        for secret in secrets(self.url):
            detail = detail.replace(secret, "***")
        return CheckpointerUnavailable(
            f"SQLCheckpointer ({self.backend}) cannot use the database at {self.safe_url}: {detail}"
        )

    def _translate(self, exc: DBAPIError) -> Exception | None:
        if exc.connection_invalidated:
            return self.unavailable(exc)
        if self.family == "sqlite" and "database is locked" in str(exc.orig):
            return SessionBusy(
                f"SQLite database {self.safe_url} stayed locked by another connection "
                f"for longer than busy_timeout={self.busy_timeout:g}s"
            )
        return None

    # ------------------------------------------------------------------ closing

    async def aclose(self) -> None:
        """Disposes the sync engine and worker threads, and the calling loop's
        async engine; engines of loops that have closed are forgotten. Another
        running loop's engine is that loop's to close. Using the database
        again afterwards opens new pools.
        """
        current = asyncio.get_running_loop()
        with self._guard:
            sync_engine, self._sync_engine = self._sync_engine, None
            executor, self._executor = self._executor, None
            mine = self._async_engines.pop(current, None)
            self._prepared.clear()
            for loop in [loop for loop in self._async_engines if loop.is_closed()]:
                del self._async_engines[loop]
        if sync_engine is not None:
            await asyncio.to_thread(sync_engine.dispose)
        if executor is not None:
            executor.shutdown(wait=False)
        if mine is not None:
            await mine.dispose()


def _error_code(exc: DBAPIError) -> Any:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    args = getattr(orig, "args", None)
    if code is None and args:
        code = args[0]
    return code


async def _uncancellable(future: asyncio.Future[T]) -> T:
    """Awaits ``future``; if cancelled meanwhile, lets it finish, then re-raises."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                continue
        if not future.cancelled():
            future.exception()
        raise
