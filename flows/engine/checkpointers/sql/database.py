"""Engines, connections and errors: running store I/O without blocking the loop.

Every store operation is written once, as a plain function of a synchronous
SQLAlchemy :class:`~sqlalchemy.Connection`. How it runs depends on the driver:

* a sync driver (``sqlite``, ``psycopg2``, ``pymysql``) runs it in a small
  dedicated thread pool, so a slow query or a held SQLite lock never blocks
  the event loop;
* an async driver (``aiosqlite``, ``asyncpg``, ``aiomysql``) runs it through
  :meth:`AsyncConnection.run_sync`, on the loop. Async engines belong to the
  loop that created them, so there is one per running loop.

Failures are translated here: a server that cannot be reached (refused, wrong
password, dropped connection) becomes :class:`CheckpointerUnavailable` naming
the URL without its password; SQLite's "database is locked" after the busy
timeout becomes :class:`SessionBusy`; deadlocks are retried.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ...errors import CheckpointerUnavailable, SessionBusy

T = TypeVar("T")

#: The pip extra that installs each driver (see pyproject.toml).
DRIVER_EXTRAS = {
    "psycopg2": "postgres",
    "asyncpg": "asyncpg",
    "pymysql": "mysql",
    "aiomysql": "aiomysql",
    "aiosqlite": "aiosqlite",
}
#: Server error codes of deadlocks and serialisation failures: the server
#: rolled the transaction back, so running it again is safe.
_RETRY_CODES = {"40001", "40P01", 1213, 1205}
_ATTEMPTS = 3


_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "sslpassword"}


def _secrets(url: URL) -> list[str]:
    found = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if key.lower() in _SECRET_QUERY_KEYS:
            found.extend([value] if isinstance(value, str) else value)
    return [secret for secret in found if secret]


def redact(url: URL) -> str:
    """The URL as text with its password (in the netloc or the query) hidden."""
    hidden = {key: "***" for key in url.query if key.lower() in _SECRET_QUERY_KEYS}
    if hidden:
        url = url.update_query_dict(hidden)
    return url.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _family(url: URL) -> str:
    name = url.get_backend_name()
    if name in ("mysql", "mariadb"):
        return "mysql"
    if name in ("postgresql", "sqlite"):
        return name
    raise ValueError(
        f"SQLCheckpointer supports PostgreSQL, MySQL/MariaDB and SQLite, not {name!r} "
        f"({redact(url)})"
    )


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


class Database:
    """One database URL: its engines, its worker threads, and error translation."""

    def __init__(
        self,
        connection_string: str | URL,
        *,
        echo: bool = False,
        pool_size: int = 5,
        max_overflow: int = 10,
        busy_timeout: float = 30.0,
        connect_args: dict[str, Any] | None = None,
        engine_options: dict[str, Any] | None = None,
        sqlite_synchronous: str = "NORMAL",
    ) -> None:
        if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA, not {sqlite_synchronous!r}")
        self.sqlite_synchronous = sqlite_synchronous.upper()
        try:
            self.url = make_url(connection_string)
        except ArgumentError as exc:
            raise ValueError(f"SQLCheckpointer: invalid connection string: {exc}") from exc
        self.safe_url = redact(self.url)
        self.family = _family(self.url)
        try:
            dialect_cls = self.url.get_dialect()
        except NoSuchModuleError as exc:
            raise ValueError(f"SQLCheckpointer: unknown driver in {self.safe_url}: {exc}") from exc
        self.driver = self.url.get_driver_name()
        self.backend = f"{self.url.get_backend_name()}+{self.driver}"
        self.is_async = bool(getattr(dialect_cls, "is_async", False))
        self._check_driver(dialect_cls)
        #: A dialect instance for compiling and quoting outside a connection.
        self.dialect = dialect_cls()
        self.memory = self.family == "sqlite" and _is_memory_sqlite(self.url)
        self.busy_timeout = max(busy_timeout, 1.0)
        self._engine_kwargs = self._build_engine_kwargs(
            echo, pool_size, max_overflow, connect_args or {}, engine_options or {}
        )
        self._threads = 1 if self.memory else pool_size + max_overflow
        self._sync_engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._async_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()
        self._prepared = False
        self._compiled: dict[int, tuple[Any, Any]] = {}
        self.prepare: Callable[[Connection], None] | None = None

    @property
    def needs_hex_blobs(self) -> bool:
        """aiomysql cannot send ``bytes`` parameters with PyMySQL >= 1.2 (it
        calls a function PyMySQL removed); such blobs travel as hex and are
        decoded by ``UNHEX()`` in the statement."""
        if self.driver != "aiomysql":
            return False
        from pymysql import converters

        return not callable(getattr(converters, "escape_bytes_prefixed", None))

    # ------------------------------------------------------------------ setup

    def _check_driver(self, dialect_cls: Any) -> None:
        """Fails at construction, not at the first checkpoint, when a driver is missing."""
        extra = DRIVER_EXTRAS.get(self.driver)
        hint = f"pip install 'django-flows[{extra}]'" if extra else "install its DBAPI driver"
        try:
            dialect_cls.import_dbapi()
        except ImportError as exc:
            raise ImportError(
                f"SQLCheckpointer: the {self.backend} driver for {self.safe_url} is not installed "
                f"({exc}); {hint}"
            ) from exc
        if self.is_async:
            try:
                import greenlet  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    f"SQLCheckpointer: async driver {self.backend} needs SQLAlchemy's asyncio "
                    f"support (greenlet); {hint} or pip install 'sqlalchemy[asyncio]'"
                ) from exc

    def _build_engine_kwargs(
        self,
        echo: bool,
        pool_size: int,
        max_overflow: int,
        connect_args: dict[str, Any],
        engine_options: dict[str, Any],
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"echo": echo}
        args = dict(connect_args)
        if self.family == "sqlite":
            # Autocommit at the driver: transactions are begun explicitly
            # (BEGIN IMMEDIATE for writes), see ``transaction``.
            args.setdefault("isolation_level", None)
            args.setdefault("timeout", self.busy_timeout)
            if not self.is_async:
                args.setdefault("check_same_thread", False)
            if self.memory:
                kwargs["poolclass"] = StaticPool
        else:
            if self.family == "mysql":
                from pymysql.constants import CLIENT

                # FOUND_ROWS (as SQLAlchemy sets it): rowcount is rows matched.
                # MULTI_STATEMENTS: a checkpoint is saved in one round trip
                # (see writers.py); only the store's own SQL is ever sent.
                args.setdefault("client_flag", CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS)
            # Driver-level autocommit: a single statement (every read, the
            # PostgreSQL step) is its own transaction, one round trip; longer
            # transactions are begun explicitly (see ``transaction``). The
            # pool's rollback-on-return is skipped in autocommit (PyMySQL
            # would send a ROLLBACK per checkout otherwise, aiosqlite hop to
            # its thread for one).
            kwargs["isolation_level"] = "AUTOCOMMIT"
        kwargs["skip_autocommit_rollback"] = True
        if not self.memory:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = max_overflow
        kwargs["connect_args"] = args
        kwargs.update(engine_options)
        return kwargs

    def _configure(self, sync_engine: Engine) -> None:
        family, memory, busy_ms = self.family, self.memory, int(self.busy_timeout * 1000)
        synchronous = self.sqlite_synchronous

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
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
            finally:
                cursor.close()

    def _engine(self) -> Engine:
        with self._guard:
            if self._sync_engine is None:
                engine = create_engine(self.url, **self._engine_kwargs)
                self._configure(engine)
                self._sync_engine = engine
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="flows-sql")
            return self._sync_engine

    def _async_engine(self) -> Any:
        from sqlalchemy.ext.asyncio import create_async_engine

        loop = asyncio.get_running_loop()
        with self._guard:
            engine = self._async_engines.get(loop)
            if engine is None:
                engine = create_async_engine(self.url, **self._engine_kwargs)
                self._configure(engine.sync_engine)
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
        if not self._prepared and self.prepare is not None:
            prepare = self.prepare
            await self._run_with_retry(lambda: self._start(prepare))
            self._prepared = True

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

    async def _connect_async(self) -> Any:
        engine = self._async_engine()
        conn = engine.connect()
        try:
            await conn.start()
        except (DBAPIError, OSError, *self._driver_errors()) as exc:
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
            return await work(raw.driver_connection, conn.sync_connection)
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
            return await self.run_on_driver(lambda aio, conn: _aio_fetch(aio, conn, sql, args))
        return await self.run(lambda conn: _fetch(conn, sql, args))

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
        for secret in _secrets(self.url):
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
            for loop in [loop for loop in self._async_engines if loop.is_closed()]:
                del self._async_engines[loop]
        if sync_engine is not None:
            await asyncio.to_thread(sync_engine.dispose)
        if executor is not None:
            executor.shutdown(wait=False)
        if mine is not None:
            await mine.dispose()


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


def _fetch(conn: Connection, sql: str, args: Any) -> list[Any]:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with driver_errors(conn, sql):
            cursor.execute(sql, args)
            return list(cursor.fetchall())
    finally:
        cursor.close()


async def _aio_fetch(aio: Any, conn: Connection, sql: str, args: Any) -> list[Any]:
    base = conn.dialect.loaded_dbapi.Error
    try:
        return list(await aio.execute_fetchall(sql, args))
    except base as exc:
        raise DBAPIError.instance(sql, None, exc, base, dialect=conn.dialect) from exc


def _error_code(exc: DBAPIError) -> Any:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code is None and getattr(orig, "args", None):
        code = orig.args[0]
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
