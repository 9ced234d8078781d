"""Diagnostic probes behind the findings in docs/performance.md (flows only, no peers).

    scripts/with-test-services .venv-bench/bin/python bench/probes.py pool
    scripts/with-test-services .venv-bench/bin/python bench/probes.py split
    scripts/with-test-services .venv-bench/bin/python bench/probes.py cold
    .venv-bench/bin/python bench/probes.py memory
    py-spy record -r 1000 -f raw -o steps.txt -- .venv-bench/bin/python bench/probes.py loop

pool   throughput of 40 sessions x 5 chat turns written 1, 5 or 8 sessions at a time,
       with SQLCheckpointer's default pool_size (5) and with 10, counting the
       connections the pool opens (SQLAlchemy's "connect" event)
split  what a sync driver's call costs before any SQL (a thread hop, ``Database.run`` of nothing);
       then one checkpoint write (``aput`` of a one-field change, 1,500 times): the median
       time spent in the store's call on its connection (driver, server, writer)
       vs everything around it (metadata encoding, thread hand-off, pool checkout)
cold   reading the head of a 1,000-turn chat (the bench's routed turn, dict messages) with the
       read cache emptied:
       the time on the connection (fetching the rows) vs decoding and folding
memory cProfile of 2,000 10-node invokes with InMemoryCheckpointer: flows' functions
       by cumulative time (the profiler roughly doubles the times; read the shares)
loop   20 s of the same invokes and nothing else, for a sampling profiler (py-spy) to
       record: it slows the process far less than cProfile (docs/performance.md)

They patch the checkpointer's ``db.run`` to time the work on the connection,
which is private API: probes, not benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import Backend, all_backends, forget_reads, mysql_database, postgres_database, with_path
from peers import CHAT, ROUTED, build, chain, chat_message, message

SQL = (
    "sqlite/sqlite3",
    "sqlite/aiosqlite",
    "postgres/psycopg2",
    "postgres/asyncpg",
    "mariadb/pymysql",
    "mariadb/aiomysql",
)


def time_on_connection(cp: Any) -> list[float]:
    """Patches ``cp.db`` so every call's work on its connection is timed into the returned list."""
    spent: list[float] = []
    db, run, run_on_driver = cp.db, cp.db.run, cp.db.run_on_driver

    def timed(work: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call(conn: Any) -> Any:
            began = time.perf_counter()
            try:
                return work(conn)
            finally:
                spent.append(time.perf_counter() - began)

        return call

    async def timed_run(work: Callable[[Any], Any]) -> Any:
        return await run(timed(work))

    async def timed_driver(work: Callable[[Any, Any], Any]) -> Any:
        async def call(aio: Any, conn: Any) -> Any:
            began = time.perf_counter()
            try:
                return await work(aio, conn)
            finally:
                spent.append(time.perf_counter() - began)

        return await run_on_driver(call)

    db.run, db.run_on_driver = timed_run, timed_driver
    return spent


def count_connections(engine: Any) -> list[int]:
    """A one-item list counting the connections ``engine``'s pool opens from now on."""
    from sqlalchemy import event

    opened = [0]

    def on_connect(*_: Any) -> None:
        opened[0] += 1

    event.listen(engine, "connect", on_connect)
    return opened


async def pool() -> None:
    from flows.engine.checkpointers import SQLCheckpointer

    for name in ("postgres/asyncpg", "postgres/psycopg2", "mariadb/pymysql"):
        backend = all_backends()[name]
        if backend.missing:
            continue
        for pool_size, concurrency in ((5, 1), (5, 5), (5, 8), (10, 8)):
            database = postgres_database if backend.family == "postgresql" else mysql_database
            async with database(backend.target) as db_name:
                url = with_path(backend.target, db_name, f"{backend.family}+{backend.floor}")
                cp = SQLCheckpointer(url, pool_size=pool_size)
                flow = build("flows", CHAT, cp)
                await flow.invoke({"messages": ["warm up"]}, "warm-up")
                opened = count_connections(cp.db.current_engine())
                names = [f"user-{i}" for i in range(40)]
                began = time.perf_counter()
                for turn in range(5):
                    for i in range(0, len(names), concurrency):
                        await asyncio.gather(
                            *(
                                flow.invoke({"messages": [message(turn)]}, n)
                                for n in names[i : i + concurrency]
                            )
                        )
                per_turn = (time.perf_counter() - began) / (len(names) * 5) * 1e3
                await cp.aclose()
            print(
                f"{name:18} pool_size={pool_size:<2} {concurrency} at a time: {per_turn:5.2f} ms per turn "
                f"(wall / turns), {opened[0]} connections opened"
            )


async def split() -> None:
    await hop()
    for name in SQL:
        backend = all_backends()[name]
        if not backend.missing:
            await split_one(backend)


async def hop() -> None:
    """What a sync driver's call pays before any SQL: the hop to a worker thread and back,
    then the same through flows' ``Database.run`` (pool checkout, retry and cancellation guards)."""
    from concurrent.futures import ThreadPoolExecutor

    from flows.engine.checkpointers.sql.database import Database

    loop = asyncio.get_running_loop()
    threads = ThreadPoolExecutor(1)
    db = Database("sqlite://")

    async def median_of(call: Callable[[], Any]) -> float:
        walls = []
        for _ in range(3000):
            began = time.perf_counter()
            await call()
            walls.append(time.perf_counter() - began)
        return statistics.median(walls) * 1e6

    bare = await median_of(lambda: loop.run_in_executor(threads, int))
    run = await median_of(lambda: db.run(lambda conn: None))
    await db.aclose()
    threads.shutdown()
    print(f"a hop to a worker thread and back: {bare:4.0f} µs; Database.run of nothing (sqlite3): {run:4.0f} µs")


async def split_one(backend: Backend) -> None:
    from flows.engine.checkpointers.types import SET, Change

    async with backend.open("flows") as store:
        cp = store.checkpointer
        async with cp.alock("s") as lease:
            parent = None

            async def step(i: int) -> None:
                nonlocal parent
                parent = await cp.aput(
                    lease,
                    parent=parent,
                    state={"counter": i},
                    changes={"counter": Change(SET, i)},
                    run_id="r",
                    node="n",
                    step=i,
                )
                lease.last_seq = parent.seq

            for i in range(200):
                await step(i)
            spent = time_on_connection(cp)
            walls = []
            for i in range(1500):
                began = time.perf_counter()
                await step(i)
                walls.append(time.perf_counter() - began)
    wall, inner = statistics.median(walls) * 1e6, statistics.median(spent) * 1e6
    print(
        f"{backend.name:18} aput {wall:4.0f} µs = {inner:4.0f} on the connection + {wall - inner:4.0f} around it "
        f"({len(spent) / len(walls):.0f} store call per write)"
    )


async def cold(turns: int = 1000) -> None:
    for name in (
        "memory",
        "sqlite/sqlite3",
        "postgres/psycopg2",
        "postgres/asyncpg",
        "mariadb/pymysql",
        "redis",
    ):
        backend: Backend = all_backends()[name]
        if backend.missing:
            continue
        async with backend.open("flows") as store:
            cp = store.checkpointer
            flow = build("flows", ROUTED, cp)
            for turn in range(turns):
                await flow.invoke({"messages": [chat_message(turn)]}, "conversation")
            spent = time_on_connection(cp) if hasattr(cp, "db") else []
            walls, inner = [], []
            for _ in range(15):
                forget_reads(cp)
                spent.clear()
                began = time.perf_counter()
                await flow.head("conversation")
                walls.append(time.perf_counter() - began)
                inner.append(sum(spent))
            wall, fetch = statistics.median(walls) * 1e6, statistics.median(inner) * 1e6
            where = (
                f" = {fetch:6.0f} on the connection + {wall - fetch:6.0f} decoding and folding"
                if spent
                else ""
            )
            print(f"{name:18} cold head read after {turns} turns: {wall:6.0f} µs{where}")


async def memory() -> None:
    from flows.engine.checkpointers import InMemoryCheckpointer

    flow = build("flows", chain(10), InMemoryCheckpointer())
    for i in range(200):  # warm up
        await flow.invoke({"messages": [message(i)]}, f"warm-{i // 20}")
    profile = cProfile.Profile()
    profile.enable()
    for i in range(2000):
        await flow.invoke({"messages": [message(i)]}, f"session-{i // 20}")
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(r"flows/engine", 20)


async def loop(seconds: float = 20.0) -> None:
    """10-node invokes in memory for ``seconds``, for a sampling profiler to watch:

        py-spy record -r 1000 -f raw -o steps.txt -- .venv-bench/bin/python bench/probes.py loop
    """
    from flows.engine.checkpointers import InMemoryCheckpointer

    flow = build("flows", chain(10), InMemoryCheckpointer())
    i, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(100):
            await flow.invoke({"messages": [message(i)]}, f"session-{i // 20}")
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    probes = {"pool": pool, "split": split, "cold": cold, "memory": memory, "loop": loop}
    parser.add_argument("probe", choices=tuple(probes))
    probe = probes[parser.parse_args().probe]
    asyncio.run(probe())


if __name__ == "__main__":
    main()
