"""History reads: the head state, and the latest 5 checkpoints, of one session among many.

Each system's store is seeded with ``sessions`` × ``turns`` turns of the 1-node
``CHAT`` graph, turn by turn across all sessions (4 sessions at a time), so
the sessions' rows are interleaved as with many concurrent users. Then, for
``reads`` sessions picked at random (the same ones for every system), each
read is timed on its own and the median printed:

* ``head`` — the full state at the head (flows/llmfy ``get_state``,
  LangGraph ``aget_state``), read once per session by a worker that has not
  read these sessions before: a new checkpointer (peers: a new saver and
  graph) over the same storage (backends.py ``Store.fresh``), which first reads
  another session so its connections are open; in memory, where no second
  checkpointer sees the data, flows' checkpointer with its read cache emptied;
* ``head, warm`` — the same sessions read again by that reader (flows serves
  the long ``messages`` list from its read cache and reads only what changed);
* ``latest 5`` — the 5 newest checkpoints: flows ``list_checkpoints``
  (metadata), llmfy ``list_checkpoints`` (each with its full state), LangGraph
  ``aget_state_history`` (snapshots with values).

Budget (DESIGN §4): reading the head and listing the latest k do not grow
with the history's length nor with the number of sessions.
"""

from __future__ import annotations

import asyncio
import random
import time
from functools import partial

from backends import Backend
from peers import CHAT, build, message
from report import ratio, table, us
from timing import median, timed

from . import Config, Failures

BACKENDS = (
    "memory",
    "sqlite/sqlite3",
    "postgres/psycopg2",
    "postgres/asyncpg",
    "mariadb/pymysql",
    "redis",
)
# sessions written at once while seeding; at most SQLCheckpointer's default pool_size (5):
# above it, every call opens and closes an overflow connection (see docs/performance.md)
CONCURRENCY = 4
LATEST = 5


async def measure(backend: Backend, system: str, sessions: int, turns: int, reads: int) -> dict[str, float]:
    async with backend.open(system) as store:
        flow = build(system, CHAT, store.checkpointer, sync=store.sync)
        await flow.invoke({"messages": [message(-1)]}, "warm-up")  # tables, connections
        names = [f"user-{i}" for i in range(sessions)]
        began = time.perf_counter()
        for turn in range(turns):
            for i in range(0, sessions, CONCURRENCY):
                await asyncio.gather(
                    *(flow.invoke({"messages": [message(turn)]}, name) for name in names[i : i + CONCURRENCY])
                )
        seeded = time.perf_counter() - began
        picked = random.Random(7).sample(names, min(reads, sessions))
        for name in picked[:5]:  # warm up connections and statement caches
            await flow.history(name, LATEST)
        async with store.fresh() as other:  # a worker that never saw these sessions
            reader = build(system, CHAT, other.checkpointer, sync=other.sync)
            await reader.head("warm-up")  # another session: connections open
            cold = [await timed(partial(reader.head, name)) for name in picked]
            warm = [await timed(partial(reader.head, name)) for name in picked]
        latest = [await timed(partial(flow.history, name, LATEST)) for name in picked]
        head = await flow.head(picked[0])
        expected = 2 * turns
        if len(head["messages"]) != expected:
            raise AssertionError(f"head has {len(head['messages'])} messages, expected {expected}")
        return {
            "head": median(cold),
            "warm": median(warm),
            "latest": median(latest),
            "seeded": seeded,
        }


async def run(config: Config) -> None:
    sessions, turns, reads = (20, 10, 20) if config.quick else (200, 50, 100)
    rows, failures = [], Failures()
    for backend in config.usable(BACKENDS):
        base: dict[str, float] = {}
        for system in config.systems_of(backend):
            try:
                result = await measure(backend, system, sessions, turns, reads)
            except Exception as error:  # noqa: BLE001 (a peer that cannot run here: noted, not fatal)
                failures.add(backend.name, system, error)
                continue
            if system == "flows":
                base = result
            rows.append(
                [
                    backend.name,
                    system,
                    us(result["head"]),
                    ratio(result["head"], base.get("head")),
                    us(result["warm"]),
                    us(result["latest"]),
                    ratio(result["latest"], base.get("latest")),
                    f"{result['seeded']:.1f}",
                ]
            )
    table(
        f"5. history reads among {sessions} sessions x {turns} turns (~{2 * turns} messages each); "
        f"median of {reads} sessions read once each" + config.tag,
        [
            "backend",
            "system",
            "head µs",
            "vs flows",
            "head, warm",
            f"latest {LATEST} µs",
            "vs flows",
            "seeding s",
        ],
        rows,
        [
            "head: a new checkpointer (peers: saver) on the same storage reads each session once "
            "(memory: flows' "
            "read cache emptied instead); warm: the same reader again",
            f"latest {LATEST}: flows returns metadata, llmfy and LangGraph return each checkpoint's state too",
        ]
        + config.notes(BACKENDS)
        + failures.notes,
    )
