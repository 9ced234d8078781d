"""The floor: the cheapest durable write of a step's bytes with the raw driver, no engine.

For each driver, a table ``floor(session_id, seq, data)`` with primary key
``(session_id, seq)`` (like a checkpoint row) on the same server or SQLite
journal mode as the checkpointer, and two ways of writing one row of
``payload`` bytes, each timed on the calling thread with nothing around it:

* ``single`` — one ``INSERT`` that commits by itself (driver autocommit): one
  round trip, the least any durable step can cost. For Redis: one ``SET``.
* ``txn`` — ``BEGIN``; ``INSERT``; ``COMMIT`` spelled out, i.e. what a driver's
  default transaction handling sends (three round trips on a network driver).

SQLite uses what ``SQLCheckpointer`` uses: ``journal_mode=WAL``,
``synchronous=NORMAL`` and ``BEGIN IMMEDIATE``. Server durability is whatever
the servers run with (``scripts/with-test-services``: ``fsync`` off), the same
for the floor and for every checkpointer measured against it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from backends import (
    Backend,
    mysql_connect,
    mysql_database,
    postgres_database,
    with_path,
)
from timing import median

Write = Callable[[int], Awaitable[None]]


@dataclass
class Floor:
    single: float  # µs per write
    txn: float | None  # µs per write


async def measure(backend: Backend, payload: int, writes: int, batches: int) -> Floor:
    """µs per write of ``payload`` bytes with ``backend``'s driver (median of batch means)."""
    blob = os.urandom(payload)
    opener = _DRIVERS[backend.floor]  # type: ignore[index]
    async with opener(backend, blob) as (single, txn):
        seq = iter(range(1, 10**9))
        for _ in range(max(5, writes // 4)):  # warm up: connection, statement caches
            await single(next(seq))
            if txn:
                await txn(next(seq))
        single_runs, txn_runs = [], []
        for _ in range(batches):
            single_runs.append(await _time(single, seq, writes))
            if txn:
                txn_runs.append(await _time(txn, seq, writes))
    return Floor(median(single_runs), median(txn_runs) if txn else None)


async def _time(write: Write, seq: Any, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        await write(next(seq))
    return (time.perf_counter() - start) / count * 1e6


# ---------------------------------------------------------------- drivers

SQLITE_DDL = "CREATE TABLE floor (session_id TEXT, seq INTEGER, data BLOB, PRIMARY KEY (session_id, seq))"


@asynccontextmanager
async def _sqlite3(backend: Backend, blob: bytes):
    folder = tempfile.mkdtemp(prefix="flows-bench-floor-")
    conn = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(SQLITE_DDL)
        insert = "INSERT INTO floor VALUES ('s', ?, ?)"

        async def single(seq: int) -> None:
            conn.execute(insert, (seq, blob))

        async def txn(seq: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(insert, (seq, blob))
            conn.execute("COMMIT")

        yield single, txn
    finally:
        conn.close()
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def _aiosqlite(backend: Backend, blob: bytes):
    import aiosqlite

    folder = tempfile.mkdtemp(prefix="flows-bench-floor-")
    conn = await aiosqlite.connect(os.path.join(folder, "floor.db"), isolation_level=None)
    try:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute(SQLITE_DDL)
        insert = "INSERT INTO floor VALUES ('s', ?, ?)"

        async def single(seq: int) -> None:
            await conn.execute(insert, (seq, blob))

        async def txn(seq: int) -> None:
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute(insert, (seq, blob))
            await conn.execute("COMMIT")

        yield single, txn
    finally:
        await conn.close()
        shutil.rmtree(folder, ignore_errors=True)


PG_DDL = "CREATE TABLE floor (session_id VARCHAR(255), seq BIGINT, data BYTEA, PRIMARY KEY (session_id, seq))"


@asynccontextmanager
async def _psycopg2(backend: Backend, blob: bytes):
    import psycopg2

    async with postgres_database(backend.target) as name:
        url = with_path(backend.target, name, "postgresql")
        auto, manual = psycopg2.connect(url), psycopg2.connect(url)
        auto.autocommit = True
        try:
            with auto.cursor() as cur:
                cur.execute(PG_DDL)
            a, m = auto.cursor(), manual.cursor()
            insert = "INSERT INTO floor VALUES ('s', %s, %s)"
            data = psycopg2.Binary(blob)

            async def single(seq: int) -> None:
                a.execute(insert, (seq, data))

            async def txn(seq: int) -> None:
                m.execute(insert, (seq, data))  # psycopg2 sends BEGIN first
                manual.commit()

            yield single, txn
        finally:
            auto.close()
            manual.close()


@asynccontextmanager
async def _asyncpg(backend: Backend, blob: bytes):
    import asyncpg

    async with postgres_database(backend.target) as name:
        conn = await asyncpg.connect(with_path(backend.target, name, "postgresql"))
        try:
            await conn.execute(PG_DDL)
            insert = "INSERT INTO floor VALUES ('s', $1, $2)"

            async def single(seq: int) -> None:
                await conn.execute(insert, seq, blob)  # prepared once, then cached

            async def txn(seq: int) -> None:
                async with conn.transaction():
                    await conn.execute(insert, seq, blob)

            yield single, txn
        finally:
            await conn.close()


MYSQL_DDL = (
    "CREATE TABLE floor (session_id VARCHAR(255), seq BIGINT, data LONGBLOB, "
    "PRIMARY KEY (session_id, seq)) ENGINE=InnoDB"
)


@asynccontextmanager
async def _pymysql(backend: Backend, blob: bytes):
    async with mysql_database(backend.target) as name:
        conn = mysql_connect(backend.target, name, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(MYSQL_DDL)
            insert = "INSERT INTO floor VALUES ('s', %s, %s)"

            async def single(seq: int) -> None:
                cur.execute(insert, (seq, blob))

            async def txn(seq: int) -> None:
                conn.begin()
                cur.execute(insert, (seq, blob))
                conn.commit()

            yield single, txn
        finally:
            conn.close()


@asynccontextmanager
async def _aiomysql(backend: Backend, blob: bytes):
    import aiomysql

    parts = urlsplit(backend.target)
    async with mysql_database(backend.target) as name:
        conn = await aiomysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username,
            password=parts.password or "",
            db=name,
            autocommit=True,
        )
        try:
            cur = await conn.cursor()
            await cur.execute(MYSQL_DDL)
            # aiomysql cannot send bytes with PyMySQL >= 1.2: hex + UNHEX(), as SQLCheckpointer does
            insert = "INSERT INTO floor VALUES ('s', %s, UNHEX(%s))"
            data = blob.hex()

            async def single(seq: int) -> None:
                await cur.execute(insert, (seq, data))

            async def txn(seq: int) -> None:
                await conn.begin()
                await cur.execute(insert, (seq, data))
                await conn.commit()

            yield single, txn
        finally:
            conn.close()


@asynccontextmanager
async def _redis(backend: Backend, blob: bytes):
    from redis.asyncio import Redis

    client = Redis.from_url(backend.target)  # redis-py asyncio + hiredis, like RedisCheckpointer
    prefix = f"flowsbench-floor:{uuid.uuid4().hex[:12]}:"
    try:

        async def single(seq: int) -> None:
            await client.set(f"{prefix}{seq}", blob)

        yield single, None
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
        await client.aclose()


_DRIVERS = {
    "sqlite": _sqlite3,
    "aiosqlite": _aiosqlite,
    "psycopg2": _psycopg2,
    "asyncpg": _asyncpg,
    "pymysql": _pymysql,
    "aiomysql": _aiomysql,
    "redis": _redis,
}
