"""Where the checkpoints go: one :class:`Backend` per table row, a fresh store per system.

Each ``Backend.open(system)`` yields a :class:`Store` that nothing else
touches: a new SQLite file, a new PostgreSQL or MariaDB database (created on
the server named by ``FLOWS_TEST_POSTGRES_URL`` / ``FLOWS_TEST_MARIADB_URL``,
dropped afterwards), or a unique key prefix in Redis (``FLOWS_TEST_REDIS_URL``,
keys deleted afterwards). ``make bench`` starts throwaway servers and sets
these variables (``scripts/with-test-services``); a backend whose variable is
missing is skipped with a note.

A :class:`Store` also opens **another** checkpointer over the same storage
(``Store.fresh()``): what a worker that never saw a session reads with — a new
``SQLCheckpointer`` / ``RedisCheckpointer`` on the same database, file or key
prefix (peers: a new saver on it), with nothing of the first one's process
state. In memory no second checkpointer can see the data: flows' fresh store is
the same checkpointer with its read cache emptied (:func:`forget_reads`), the
peers' the same saver (they keep no read cache). ``Store.close()`` closes the
store's connections before the block ends (the database stays, for a fresh
store to open).

Bytes stored (:class:`Size`), measured the same way for every system where
the storage allows it:

* ``payload`` — the stored data itself. flows: ``get_stats()`` /
  ``aget_stats()["bytes"]`` (its encoded metadata and field writes). Peers:
  ``SUM(LENGTH(...))`` of the columns holding their states, checkpoints,
  metadata and writes; in memory, the serialised size of what the saver holds
  (llmfy keeps live Python objects, deep copies, so for it this is their JSON
  size: a lower bound on its RAM); in Redis, ``STRLEN`` of string values.
* ``disk`` — what the store really occupies: SQLite ``page_count ×
  page_size``; PostgreSQL ``pg_total_relation_size`` of every table (heap,
  TOAST — compressed — and indexes); MariaDB InnoDB ``data_length +
  index_length`` after ``ANALYZE TABLE`` (page-granular estimates); Redis
  ``MEMORY USAGE`` of every key. None in process memory.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager as AsyncContextManager
from contextlib import AsyncExitStack, asynccontextmanager, closing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from peers import SYSTEMS


@dataclass
class Size:
    payload: int
    disk: int | None = None


@dataclass
class Store:
    checkpointer: Any
    measure: Callable[[], Awaitable[Size]]
    sync: bool = False  # a LangGraph saver without async methods
    #: another checkpointer (saver) over the same storage, closed when the block ends
    fresh: Callable[[], AsyncContextManager[Store]] | None = None
    #: closes this store's connections now (idempotent; the block's end closes them otherwise)
    close: Callable[[], Awaitable[None]] | None = None
    database: str | None = None  # the PostgreSQL / MariaDB database's name
    #: how a fresh store differs from a new process ("" when it is a new checkpointer)
    cold: str = ""


def forget_reads(checkpointer: Any) -> bool:
    """Empties flows' in-process read cache (``_read_cache``); False if it cannot be found.

    For memory only, where no second checkpointer can see the same data: on the
    other backends a fresh checkpointer is what a new worker is.
    """
    cache = getattr(checkpointer, "_read_cache", None)
    if cache is None:
        return not hasattr(checkpointer, "_read_cache")  # None: the cache is disabled
    if callable(getattr(cache, "clear", None)):
        cache.clear()
        return True
    size = getattr(cache, "size", None)
    if isinstance(size, int):
        checkpointer._read_cache = type(cache)(size)  # a new, empty cache of the same size
        return True
    return False


@asynccontextmanager
async def store_of(
    make: Callable[[], AsyncContextManager[Any]],
    measure_of: Callable[[Any], Callable[[], Awaitable[Size]]],
    *,
    sync: bool = False,
    database: str | None = None,
) -> AsyncIterator[Store]:
    """A Store on ``make()``'s checkpointer, whose ``fresh()`` is another ``make()``."""

    @asynccontextmanager
    async def fresh() -> AsyncIterator[Store]:
        async with make() as other:
            yield Store(other, measure_of(other), sync, database=database)

    async with AsyncExitStack() as stack:
        cp = await stack.enter_async_context(make())
        yield Store(cp, measure_of(cp), sync, fresh=fresh, close=stack.aclose, database=database)


@dataclass
class Backend:
    """One row of the tables: a database and driver (or memory) and who can use it."""

    name: str
    floor: str | None  # driver key of floor.py, None for memory
    systems: tuple[str, ...]
    open: Callable[[str], Any]  # system -> async context manager yielding a Store
    note: str = ""
    missing: str | None = None  # why it cannot run here
    target: str = ""  # the URL or path the floor writes to
    family: str = field(default="")


def env_url(name: str) -> str | None:
    return os.environ.get(name) or None


def with_path(url: str, database: str, scheme: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme or parts.scheme, parts.netloc, "/" + database, parts.query, ""))


# ----------------------------------------------------------------------- memory


@asynccontextmanager
async def open_memory(system: str) -> AsyncIterator[Store]:
    if system == "flows":
        from flows.engine.checkpointers import InMemoryCheckpointer

        cp = InMemoryCheckpointer()

        async def measure() -> Size:
            return Size(cp.get_stats()["bytes"])

    elif system == "llmfy":
        from llmfy.flow_engine import InMemoryCheckpointer as LlmfyMemory

        cp = LlmfyMemory()

        async def measure() -> Size:
            held = (c for checkpoints in cp._storage.values() for c in checkpoints)
            return Size(sum(len(json.dumps(c.to_dict(), default=str)) for c in held))

    else:
        from langgraph.checkpoint.memory import InMemorySaver

        cp = InMemorySaver()

        async def measure() -> Size:
            blobs = sum(len(blob) for _, blob in cp.blobs.values())
            records = sum(
                len(checkpoint[1]) + len(metadata[1])
                for namespaces in cp.storage.values()
                for saved in namespaces.values()
                for checkpoint, metadata, _parent in saved.values()
            )
            writes = sum(len(w[2][1]) for inner in cp.writes.values() for w in inner.values())
            return Size(blobs + records + writes)

    cold = (
        "the same checkpointer, its read cache emptied"
        if system == "flows"
        else "the same saver (no read cache)"
    )
    store = Store(cp, measure, cold=cold)

    @asynccontextmanager
    async def fresh() -> AsyncIterator[Store]:
        if system == "flows" and not forget_reads(cp):
            store.cold = "the read cache could not be emptied (no _read_cache.clear() or .size): cold = warm"
        yield Store(cp, measure, cold=store.cold)

    store.fresh = fresh
    yield store


# ----------------------------------------------------------------------- SQL

# The columns that hold each peer's data, per database family.
PEER_COLUMNS = {
    ("llmfy", "sqlite"): [("llmfy_checkpoint", "state")],
    ("llmfy", "postgresql"): [("llmfy_checkpoint", "state")],
    ("llmfy", "mysql"): [("llmfy_checkpoint", "state")],
    ("langgraph", "sqlite"): [
        ("checkpoints", "checkpoint"),
        ("checkpoints", "metadata"),
        ("writes", "value"),
    ],
    ("langgraph", "postgresql"): [
        ("checkpoints", "checkpoint::text"),
        ("checkpoints", "metadata::text"),
        ("checkpoint_blobs", "blob"),
        ("checkpoint_writes", "blob"),
    ],
}


def sql_payload(system: str, family: str, query: Callable[[str], int]) -> int:
    length = "octet_length" if family == "postgresql" else "length"
    return sum(
        query(f"SELECT COALESCE(SUM({length}({column})), 0) FROM {table}")
        for table, column in PEER_COLUMNS[(system, family)]
    )


@asynccontextmanager
async def sql_saver(system: str, url: str) -> AsyncIterator[Any]:
    """flows' or llmfy's SQLCheckpointer on ``url`` (SQLAlchemy URL with driver), closed afterwards."""
    if system == "flows":
        from flows.engine.checkpointers import SQLCheckpointer

        cp = SQLCheckpointer(url)
        close = cp.aclose
    else:
        from llmfy.flow_engine import SQLCheckpointer as LlmfySQL

        cp = LlmfySQL(url)
        close = cp.close
    try:
        yield cp
    finally:
        await close()


def sql_measure(
    system: str, family: str, query: Callable[[str], int], disk: Callable[[], int] | None
) -> Callable[[Any], Callable[[], Awaitable[Size]]]:
    """Bytes stored: flows' ``aget_stats()``, the peers' data columns; and ``disk()``."""

    def measure_of(cp: Any) -> Callable[[], Awaitable[Size]]:
        async def measure() -> Size:
            payload = (await cp.aget_stats())["bytes"] if system == "flows" else sql_payload(system, family, query)
            return Size(payload, disk() if disk else None)

        return measure

    return measure_of


def sqlite_backend(driver: str) -> Backend:
    """SQLite through the built-in ``sqlite3`` (``driver="sqlite"``) or ``aiosqlite``."""
    is_async = driver == "aiosqlite"

    @asynccontextmanager
    async def open_sqlite(system: str) -> AsyncIterator[Store]:
        folder = tempfile.mkdtemp(prefix="flows-bench-")
        path = os.path.join(folder, f"{system}.db")

        def query(sql: str) -> int:
            with closing(sqlite3.connect(path)) as conn:
                return int(conn.execute(sql).fetchone()[0] or 0)

        def disk() -> int:
            return query("PRAGMA page_count") * query("PRAGMA page_size")

        if system == "langgraph":

            def make() -> AsyncContextManager[Any]:
                return langgraph_sqlite(path, is_async)

        else:
            url = f"sqlite+aiosqlite:///{path}" if is_async else f"sqlite:///{path}"

            def make() -> AsyncContextManager[Any]:
                return sql_saver(system, url)

        try:
            measure_of = sql_measure(system, "sqlite", query, disk)
            async with store_of(make, measure_of, sync=system == "langgraph" and not is_async) as store:
                yield store
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    name = "sqlite/aiosqlite" if is_async else "sqlite/sqlite3"
    return Backend(
        name,
        driver,
        SYSTEMS,
        open_sqlite,
        family="sqlite",
        note="langgraph: " + ("AsyncSqliteSaver" if is_async else "SqliteSaver (sync API)"),
    )


@asynccontextmanager
async def langgraph_sqlite(path: str, is_async: bool) -> AsyncIterator[Any]:
    if is_async:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            await saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            saver = SqliteSaver(conn)
            saver.setup()
            yield saver
        finally:
            conn.close()


# --------------------------------------------------------------- PostgreSQL


@asynccontextmanager
async def postgres_database(base_url: str) -> AsyncIterator[str]:
    """The name of a new, empty database on the server of ``base_url``; dropped afterwards."""
    import psycopg2

    name = "flowsbench_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(base_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def postgres_backend(driver: str) -> Backend:
    base = env_url("FLOWS_TEST_POSTGRES_URL")
    is_async = driver == "asyncpg"

    @asynccontextmanager
    async def open_postgres(system: str) -> AsyncIterator[Store]:
        import psycopg2

        assert base is not None
        async with postgres_database(base) as name:
            url = with_path(base, name, "postgresql")

            def query(sql: str) -> int:
                with closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
                    cur.execute(sql)
                    return int(cur.fetchone()[0] or 0)

            def disk() -> int:
                return query(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind = 'r'"
                )

            if system == "langgraph":

                def make() -> AsyncContextManager[Any]:
                    return langgraph_postgres(url, is_async)

            else:
                driver_url = with_path(base, name, f"postgresql+{driver}")

                def make() -> AsyncContextManager[Any]:
                    return sql_saver(system, driver_url)

            measure_of = sql_measure(system, "postgresql", query, disk)
            sync = system == "langgraph" and not is_async
            async with store_of(make, measure_of, sync=sync, database=name) as store:
                yield store

    saver = "AsyncPostgresSaver" if is_async else "PostgresSaver (sync API)"
    return Backend(
        f"postgres/{driver}",
        driver,
        SYSTEMS,
        open_postgres,
        family="postgresql",
        target=base or "",
        note=f"langgraph: {saver} on psycopg 3 (it has no {driver} saver)",
        missing=None if base else "FLOWS_TEST_POSTGRES_URL not set",
    )


@asynccontextmanager
async def langgraph_postgres(url: str, is_async: bool) -> AsyncIterator[Any]:
    if is_async:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver


# ------------------------------------------------------------------ MariaDB


def mysql_connect(url: str, database: str | None = None, **options: Any) -> Any:
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        database=database,
        **options,
    )


@asynccontextmanager
async def mysql_database(base_url: str) -> AsyncIterator[str]:
    name = "flowsbench_" + uuid.uuid4().hex[:12]
    admin = mysql_connect(base_url, autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def mariadb_backend(driver: str) -> Backend:
    base = env_url("FLOWS_TEST_MARIADB_URL")

    @asynccontextmanager
    async def open_mariadb(system: str) -> AsyncIterator[Store]:
        assert base is not None
        async with mysql_database(base) as name:

            def query(sql: str) -> int:
                conn = mysql_connect(base, name, autocommit=True)
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql)
                        return int(cur.fetchone()[0] or 0)
                finally:
                    conn.close()

            def disk() -> int:
                conn = mysql_connect(base, name, autocommit=True)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SHOW TABLES")
                        for (table,) in cur.fetchall():
                            cur.execute(f"ANALYZE TABLE `{table}`")
                            cur.fetchall()
                        cur.execute(
                            "SELECT COALESCE(SUM(data_length + index_length), 0) "
                            "FROM information_schema.tables WHERE table_schema = %s",
                            (name,),
                        )
                        return int(cur.fetchone()[0])
                finally:
                    conn.close()

            url = with_path(base, name, f"mysql+{driver}")

            def make() -> AsyncContextManager[Any]:
                return sql_saver(system, url)

            async with store_of(make, sql_measure(system, "mysql", query, disk), database=name) as store:
                yield store

    return Backend(
        f"mariadb/{driver}",
        driver,
        ("flows", "llmfy"),
        open_mariadb,
        family="mysql",
        target=base or "",
        note="langgraph: no MySQL/MariaDB saver",
        missing=None if base else "FLOWS_TEST_MARIADB_URL not set",
    )


# -------------------------------------------------------------------- Redis


def redis_backend() -> Backend:
    url = env_url("FLOWS_TEST_REDIS_URL")

    @asynccontextmanager
    async def open_redis(system: str) -> AsyncIterator[Store]:
        from redis.asyncio import Redis

        assert url is not None
        prefix = f"flowsbench:{uuid.uuid4().hex[:12]}:"
        client = Redis.from_url(url)

        async def keys() -> list[bytes]:
            return [key async for key in client.scan_iter(match=prefix + "*", count=1000)]

        async def memory() -> int:
            found = await keys()
            pipe = client.pipeline(transaction=False)
            for key in found:
                pipe.memory_usage(key, samples=0)
            return sum(v or 0 for v in await pipe.execute())

        @asynccontextmanager
        async def make() -> AsyncIterator[Any]:
            if system == "flows":
                from flows.engine.checkpointers import RedisCheckpointer

                cp = RedisCheckpointer(url, prefix=prefix)
                close = cp.aclose
            else:
                from llmfy.flow_engine import RedisCheckpointer as LlmfyRedis

                cp = LlmfyRedis(url, prefix=prefix)
                close = cp.close
            try:
                yield cp
            finally:
                await close()

        def measure_of(cp: Any) -> Callable[[], Awaitable[Size]]:
            async def measure() -> Size:
                if system == "flows":
                    return Size((await cp.aget_stats())["bytes"], await memory())
                found = await keys()
                pipe = client.pipeline(transaction=False)
                for key in found:
                    pipe.type(key)
                strings = [k for k, kind in zip(found, await pipe.execute(), strict=True) if kind == b"string"]
                for key in strings:
                    pipe.strlen(key)
                return Size(sum(await pipe.execute()), await memory())

            return measure

        try:
            async with store_of(make, measure_of) as store:
                yield store
        finally:
            found = await keys()
            for i in range(0, len(found), 500):
                await client.delete(*found[i : i + 500])
            await client.aclose()

    return Backend(
        "redis",
        "redis",
        ("flows", "llmfy"),
        open_redis,
        family="redis",
        target=url or "",
        note="langgraph: skipped, its Redis saver needs the RedisJSON and RediSearch modules",
        missing=None if url else "FLOWS_TEST_REDIS_URL not set",
    )


# ------------------------------------------------------------------ registry

MEMORY = Backend("memory", None, SYSTEMS, open_memory, family="memory")


def all_backends() -> dict[str, Backend]:
    """Every backend row, in table order (memory first)."""
    rows = [
        MEMORY,
        sqlite_backend("sqlite"),
        sqlite_backend("aiosqlite"),
        postgres_backend("psycopg2"),
        postgres_backend("asyncpg"),
        mariadb_backend("pymysql"),
        mariadb_backend("aiomysql"),
        redis_backend(),
    ]
    return {backend.name: backend for backend in rows}
