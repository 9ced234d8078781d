"""A long conversation: µs per turn as it grows, head reads cold and warm, bytes stored.

One session per system, backend and **message shape**, turn after turn of the
``ROUTED`` graph (peers.py): classify → conditional edge → respond, over the
README's reducer (``messages: Annotated[list, operator.add]``) and a replaced
``intent``. Each turn's input is one ~200-byte user message and ``respond``
appends one ~200-byte reply of the same shape, so ``messages`` grows by two a
turn. Two shapes: ``dict`` — chat-shaped, ``{"role": "user" | "assistant",
"content": <~200-byte text>}`` as real chat messages are — and ``str`` (the
same text alone). flows, llmfy and LangGraph all take both; the peers run the
dict conversation only (``PEER_SHAPES``: their str turns show nothing more and
would add a minute or more to ``make bench``).

* **Turns** (table 4): every turn is timed on its own (after a warm-up turn on
  another session, so tables and connections exist); the figure at turn N is
  the median of the ``WINDOW`` turns from N on. Marks: 0, 100, 1,000 (``--quick``:
  0, 100; ``--long``: also 10,000). ``N÷0`` is the late÷early ratio. Target
  (issue 10): flows late÷early ≤ 1.3x at 1,000 turns with dict messages, on
  every backend.
* **Head reads** (table 4b), when the session has exactly 100, 1,000 (10,000)
  turns: *warm* — the writing flow, which has read the head once already,
  reads it again (flows' read cache warm), median of 5 (``--quick``: 3);
  *cold* — a worker that never saw the session: a new checkpointer (peers: a
  new saver and graph) over the same database, file or Redis prefix
  (backends.py ``Store.fresh``), which first reads another session
  (connections open, statements prepared), then the head, timed; median of 5
  (3), each on its own new checkpointer. In memory no second checkpointer can
  see the data: flows' cold read is the same checkpointer with its read cache
  emptied, the peers' a new graph over the same saver. Every read is checked
  against the expected length, and each cold state against the warm one.
  Targets (issue 10): at 1,000 turns, cold ≤ 2x warm and ≤ the faster peer's
  cold read on the same backend, and the same from 100 to 10,000 turns.
* **Bytes stored** (table 4c) at the same lengths (``--quick``: 10 and 100):
  a store that keeps what changed grows ~10x per 10x turns, a full copy per
  checkpoint ~100x. Budget (issues 2, 3): 1,000 turns < 12x the bytes of 100.

The peers keep a full copy of the message list per checkpoint (quadratic in
time and bytes), so with ``--long`` they stop at 1,000 turns; their 10,000-turn
head read is of a session written by one invoke carrying the 19,999 earlier
messages (the same state; their read fetches the latest checkpoint either way,
so it does not depend on how the history was written). flows runs all 10,000
turns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from backends import Backend, Size
from peers import ROUTED, SHAPES, build
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
# the peers run the dict conversation only: their str turns add nothing the dict ones do not show
# (a full copy per checkpoint either way) and would add a minute or more to `make bench`
PEER_SHAPES = ("dict",)
PEER_TURNS = 1000  # the peers' longest real conversation (--long: flows goes on to 10,000)
SESSION = "conversation"


@dataclass
class Result:
    turns: dict[int, float] = field(default_factory=dict)  # mark -> median µs of the window from it
    reads: dict[int, tuple[float, float]] = field(default_factory=dict)  # length -> (warm µs, cold µs)
    sizes: dict[int, Size] = field(default_factory=dict)  # length -> bytes stored
    seeded: set[int] = field(default_factory=set)  # lengths read from a session written in one invoke
    cold: str = ""  # how its cold reads differ from a new worker's (backends.py Store.cold)


def history(shape: str, turns: int) -> list[Any]:
    """The messages of ``turns`` turns but the last reply: user 0, reply 0, …, user turns-1."""
    make = SHAPES[shape]
    out: list[Any] = []
    for i in range(turns):
        out.append(make(i))
        if i < turns - 1:
            out.append(make(i, "assistant"))
    return out


async def timed_read(read: Any, session: str) -> tuple[float, Any]:
    began = time.perf_counter()
    state = await read(session)
    return (time.perf_counter() - began) * 1e6, state


def check(state: Any, expected: int, what: str) -> list[Any]:
    messages = list((state or {}).get("messages") or ())
    if len(messages) != expected:
        raise AssertionError(f"{what} head has {len(messages)} messages, expected {expected}")
    return messages


async def head_reads(
    store: Any, system: str, flow: Any, session: str, expected: int, reads: int
) -> tuple[float, float]:
    """(warm µs, cold µs) of the head of ``session``: see the module's docstring."""
    warm, cold = [], []
    reference = check(await flow.head(session), expected, "warm")  # warm: this process read it before
    for _ in range(reads):
        spent, state = await timed_read(flow.head, session)
        reference = check(state, expected, "warm")
        warm.append(spent)
    for _ in range(reads):
        async with store.fresh() as other:
            reader = build(system, ROUTED, other.checkpointer, sync=other.sync)
            await reader.head("warm-up")  # another session: connections open, statements prepared
            spent, state = await timed_read(reader.head, session)
        if check(state, expected, "cold") != reference:
            raise AssertionError("the cold head differs from the warm one")
        cold.append(spent)
    return median(warm), median(cold)


async def converse(
    backend: Backend, system: str, shape: str, marks: tuple[int, ...], sizes_at: tuple[int, ...], reads: int
) -> Result:
    make = SHAPES[shape]
    result = Result()
    lengths = [m for m in marks if m > 0]
    async with backend.open(system) as store:
        flow = build(system, ROUTED, store.checkpointer, sync=store.sync)
        await flow.invoke({"messages": [make(-1)]}, "warm-up")
        run_to = marks[-1] if system == "flows" else min(marks[-1], PEER_TURNS)
        timed_marks = [m for m in marks if m <= run_to]
        times: list[float] = []
        for turn in range(timed_marks[-1] + WINDOW):
            if turn in lengths:  # before measuring sizes: SQLite's size queries reset its page cache
                result.reads[turn] = await head_reads(store, system, flow, SESSION, 2 * turn, reads)
            if turn in sizes_at:
                result.sizes[turn] = await store.measure()
            turn_input = {"messages": [make(turn)]}
            times.append(await timed(lambda: flow.invoke(turn_input, SESSION)))  # noqa: B023 (awaited at once)
        for mark in timed_marks:
            result.turns[mark] = median(times[mark : mark + WINDOW])
        for length in (m for m in lengths if m > run_to):  # peers, --long: one invoke writes the history
            session = f"seeded-{length}"
            await flow.invoke({"messages": history(shape, length)}, session)
            result.reads[length] = await head_reads(store, system, flow, session, 2 * length, reads)
            result.seeded.add(length)
        result.cold = store.cold
    return result


async def run(config: Config) -> None:
    if config.quick:
        marks, sizes_at, reads = (0, 100), (10, 100), 3
    else:
        marks = (0, 100, 1000, 10000) if config.long else (0, 100, 1000)
        sizes_at, reads = marks[1:], 5
    lengths = marks[1:]
    results: dict[tuple[str, str, str], Result] = {}
    failures = Failures()
    for backend in config.usable(BACKENDS):
        for shape in SHAPES:
            for system in systems_of(config, backend, shape):
                try:
                    results[backend.name, shape, system] = await converse(
                        backend, system, shape, marks, sizes_at, reads
                    )
                except Exception as error:  # noqa: BLE001 (a peer that cannot run here: noted, not fatal)
                    failures.add(f"{backend.name} ({shape})", system, error)
    colds = sorted(
        {f"{name} {system}: cold = {r.cold}" for (name, _, system), r in results.items() if r.cold}
    )
    common = max(m for m in marks if m <= PEER_TURNS)
    turns_table(config, marks, common, results, failures)
    reads_table(config, lengths, results, failures, colds)
    sizes_table(config, sizes_at, results)


def systems_of(config: Config, backend: Backend, shape: str) -> list[str]:
    return [s for s in config.systems_of(backend) if s == "flows" or shape in PEER_SHAPES]


def rows_of(config: Config, results: dict[tuple[str, str, str], Result]):
    for backend in config.usable(BACKENDS):
        for shape in SHAPES:
            for system in systems_of(config, backend, shape):
                if (backend.name, shape, system) in results:
                    yield backend.name, shape, system, results[backend.name, shape, system]


def turns_table(config: Config, marks: tuple[int, ...], common: int, results, failures: Failures) -> None:
    rows = []
    for name, shape, system, result in rows_of(config, results):
        flows = results.get((name, shape, "flows"))
        base = result.turns.get(0)
        rows.append(
            [name, shape, system]
            + [us(result.turns.get(m)) for m in marks]
            + [ratio(result.turns.get(m), base) for m in marks[1:]]
            + [ratio(result.turns.get(common), flows.turns.get(common) if flows else None)]
        )
    target = 1000
    if target in marks:
        missed = []
        for backend in config.usable(BACKENDS):
            got = results.get((backend.name, "dict", "flows"))
            if got is None:
                missed.append(f"{backend.name} (no result)")
            elif not got.turns[target] <= 1.3 * got.turns[0]:
                missed.append(backend.name)
        verdict = f"not met on {', '.join(missed)}" if missed else "met on every backend"
    else:
        verdict = f"not measured (stops at turn {marks[-1]}; --quick)"
    table(
        f"4. long conversation: µs per turn at turn N (median of turns N..N+{WINDOW - 1}), "
        "classify -> conditional -> respond, one session" + config.tag,
        ["backend", "shape", "system"]
        + [f"turn {m:,}" for m in marks]
        + [f"{m:,}÷0" for m in marks[1:]]
        + [f"vs flows @{common:,}"],
        rows,
        [
            "target (issue 10): flows late÷early ≤ 1.3x at 1,000 turns with dict messages "
            f"on every backend -> {verdict}",
            "dict: {'role': 'user'|'assistant', 'content': <~200-byte text>}; "
            "str: the text alone (flows only); "
            "state messages: Annotated[list, operator.add], intent: str",
        ]
        + (
            [f"--long: the peers stop at {PEER_TURNS:,} turns (a full copy of the messages per checkpoint)"]
            if marks[-1] > PEER_TURNS
            else []
        )
        + config.notes(BACKENDS)
        + failures.notes,
    )


def reads_table(
    config: Config, lengths: tuple[int, ...], results, failures: Failures, colds: list[str]
) -> None:
    rows = []
    verdicts: dict[int, dict[str, list[str]]] = {n: {"2x": [], "peer": [], "checked": []} for n in lengths}
    for name, shape, system, result in rows_of(config, results):
        peers = [r for (n, s, sys_), r in results.items() if n == name and s == shape and sys_ != "flows"]
        row = [name, shape, system]
        for n in lengths:
            warm, cold = result.reads.get(n, (None, None))
            faster = min((p.reads[n][1] for p in peers if n in p.reads), default=None)
            seeded = "*" if n in result.seeded else ""
            row += [us(warm) + seeded, us(cold) + seeded, ratio(cold, warm)]
            row.append(ratio(cold, faster) if system == "flows" else "-")
            if system == "flows" and cold is not None and warm is not None:
                verdicts[n]["checked"].append(f"{name} {shape}")
                if cold > 2 * warm:
                    verdicts[n]["2x"].append(f"{name} {shape}")
                if faster is not None and cold > faster:
                    verdicts[n]["peer"].append(f"{name} {shape}")
        rows.append(row)
    header = ["backend", "shape", "system"]
    for n in lengths:
        header += [f"warm@{n:,} µs", f"cold@{n:,} µs", "cold÷warm", "cold÷peer"]

    def said(missed: list[str], checked: list[str]) -> str:
        if not checked:
            return "not measured"
        return "met" if not missed else f"not met on {', '.join(missed)}"

    notes = [
        "warm: the writing flow, having read the head once, reads it again (flows' read cache warm); "
        "cold: a new checkpointer "
        "(peers: a new saver and graph) on the same storage, after one read of another session on it; "
        f"medians of {3 if config.quick else 5}, each cold read on its own new checkpointer",
        "cold÷peer: flows' cold read ÷ the faster peer's cold read, same backend and shape",
    ]
    for n in lengths:
        v = verdicts[n]
        notes.append(
            f"targets (issue 10) at {n:,} turns: flows cold ≤ 2x warm -> {said(v['2x'], v['checked'])}; "
            f"cold ≤ the faster peer's -> {said(v['peer'], v['checked'])}"
        )
    if any(r.seeded for r in results.values()):
        notes.append("*: the peers' session of that length was written by one invoke (see conversation.py)")
    table(
        "4b. head reads, warm and cold, of the long conversation at N turns (µs)" + config.tag,
        header,
        rows,
        notes + colds + config.notes(BACKENDS) + failures.notes,
    )


def sizes_table(config: Config, sizes_at: tuple[int, ...], results) -> None:
    rows = []
    steps = list(pairwise(sizes_at))
    for name, shape, system, result in rows_of(config, results):
        got = [result.sizes.get(n) for n in sizes_at]
        payload = [g.payload if g else None for g in got]
        disk = [g.disk if g else None for g in got]
        rows.append(
            [name, shape, system]
            + [size(p) for p in payload]
            + [ratio(payload[i + 1], payload[i]) for i in range(len(steps))]
            + [size(d) for d in disk]
            + [ratio(disk[i + 1], disk[i]) if disk[i] else "-" for i in range(len(steps))]
        )
    header = (
        ["backend", "shape", "system"]
        + [f"payload@{n:,}" for n in sizes_at]
        + [f"{a:,}→{b:,}" for a, b in steps]
        + [f"disk@{n:,}" for n in sizes_at]
        + [f"{a:,}→{b:,}" for a, b in steps]
    )
    table(
        "4c. bytes stored by the long conversation after N turns" + config.tag,
        header,
        rows,
        [
            "budget (issues 2, 3): flows' payload 100→1,000 turns < 12x "
            "(linear ≈ 10x, a full copy per checkpoint ≈ 100x)",
            "payload: flows = aget_stats()['bytes']; peers = SUM(LENGTH()) of their data columns "
            "(memory: serialised size held; Redis: STRLEN); "
            "disk: table sizes / MEMORY USAGE (see bench/backends.py)",
        ],
    )
