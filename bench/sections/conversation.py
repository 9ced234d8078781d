"""A long conversation: µs per turn early vs late, and bytes stored.

One session, ``turns`` invokes of the 1-node ``CHAT`` graph: each turn appends
a ~200-byte user message (the input) and a ~200-byte reply (the node), so the
state grows by ~400 bytes a turn. Every turn is timed on its own (after a
warm-up turn on another session, so tables and connections exist); early =
median of the first 10 turns, late = median of the last 10. Bytes stored
(see backends.py: ``payload`` and ``disk``) are read after turn ``turns // 10``
and after the last turn: a store that keeps what changed grows ~10x between
the two, a full copy per checkpoint ~100x. Last, the head state is read
``HEAD_READS`` times (median; flows' read cache emptied before each read, as
for a worker new to the session): what reading a long conversation costs.

Budgets (issues 2 and 3): late ≤ 1.5x early; 1,000 turns < 12x the bytes of
100 turns.
"""

from __future__ import annotations

from backends import Backend, Size
from peers import CHAT, build, message
from report import ratio, size, table, us
from timing import median, timed

from . import Config, Failures

# one driver per database, both for PostgreSQL (llmfy fails on asyncpg)
BACKENDS = (
    "memory",
    "sqlite/sqlite3",
    "postgres/psycopg2",
    "postgres/asyncpg",
    "mariadb/pymysql",
    "redis",
)
WINDOW = 10
HEAD_READS = 7


async def converse(backend: Backend, system: str, turns: int) -> tuple[list[float], Size, Size, float]:
    """Per-turn µs, the bytes stored after turns // 10 and after all turns, and a head read's µs."""
    async with backend.open(system) as store:
        flow = build(system, CHAT, store.checkpointer, sync=store.sync)
        await flow.invoke({"messages": [message(-1)]}, "warm-up")
        times: list[float] = []
        early = Size(0)
        for turn in range(turns):
            turn_input = {"messages": [message(turn)]}
            times.append(await timed(lambda: flow.invoke(turn_input, "conversation")))  # noqa: B023 (awaited at once)
            if turn + 1 == turns // 10:
                early = await store.measure()
        final = await store.measure()
        cache = getattr(store.checkpointer, "_read_cache", None)
        reads = []
        for _ in range(HEAD_READS):
            if cache is not None:
                cache.clear()  # flows: a worker that has not read this session yet
            reads.append(await timed(lambda: flow.head("conversation")))
        return times, early, final, median(reads)


async def run(config: Config) -> None:
    turns = 100 if config.quick else 1000
    first = turns // 10
    rows, failures = [], Failures()
    for backend in config.usable(BACKENDS):
        base: float | None = None
        for system in config.systems_of(backend):
            try:
                times, small, big, head = await converse(backend, system, turns)
            except Exception as error:  # noqa: BLE001 (a peer that cannot run here: noted, not fatal)
                failures.add(backend.name, system, error)
                continue
            early, late = median(times[:WINDOW]), median(times[-WINDOW:])
            if system == "flows":
                base = late
            rows.append(
                [
                    backend.name,
                    system,
                    us(early),
                    us(late),
                    ratio(late, early),
                    ratio(late, base),
                    us(head),
                    size(small.payload),
                    size(big.payload),
                    ratio(big.payload, small.payload),
                    size(small.disk),
                    size(big.disk),
                    ratio(big.disk, small.disk) if small.disk else "-",
                ]
            )
    table(
        f"4. long conversation: {turns} turns of ~2x200-byte messages, one session (µs per turn; "
        f"early/late = median of the first/last {WINDOW})",
        [
            "backend",
            "system",
            "early µs",
            "late µs",
            "late÷early",
            "late vs flows",
            "head read µs",
            f"payload@{first}",
            f"payload@{turns}",
            "growth",
            f"disk@{first}",
            f"disk@{turns}",
            "growth",
        ],
        rows,
        [
            (
                f"budgets: flows late÷early ≤ 1.5x; payload growth {first}→{turns} turns < 12x "
                "(linear ≈ 10x, a full copy per checkpoint ≈ 100x)"
            ),
            (
                "payload: flows = aget_stats()['bytes']; peers = SUM(LENGTH()) of their data columns "
                "(memory: serialised size held; Redis: STRLEN); disk: table sizes / MEMORY USAGE (see bench/backends.py)"
            ),
        ]
        + config.notes(BACKENDS)
        + failures.notes,
    )
