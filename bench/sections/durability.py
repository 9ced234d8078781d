"""flows' durability modes side by side: µs per 10-node invoke in ``sync``, ``async`` and ``exit``.

The 10-node ``chain`` (steps.py) runs on each backend once per mode, on a fresh
store, a new session every 20 turns; figures are medians of batch means (as in
steps.py). ``async`` overlaps each checkpoint's write with the next node, so it
gains most where a write is a round trip to a server and nodes take time;
these nodes take none, so what it shows is the write pipeline's own cost.
``exit`` writes one checkpoint per run instead of 11. Run with ``--durable``
for servers that flush every commit.
"""

from __future__ import annotations

from backends import Backend
from peers import _wire as wire
from peers import chain, message
from report import ratio, table, us
from timing import batch_mean, calibrate, median

from . import Config

MODES = ("sync", "async", "exit")
LONG = 10
TURNS_PER_SESSION = 20


async def measure(backend: Backend, durability: str, seconds: float, batches: int) -> float:
    """Median µs per 10-node invoke in ``durability``."""
    from flows.engine import END, START, FlowEngine

    graph = chain(LONG)
    async with backend.open("flows") as store:
        flow = FlowEngine(graph.state, store.checkpointer, max_steps=LONG + 10, durability=durability)
        wire(flow, graph, {"START": START, "END": END})

        async def run(i: int) -> None:
            await flow.invoke({"messages": [message(i)]}, session_id=f"{durability}-{i // TURNS_PER_SESSION}")

        size = await calibrate(run, seconds)
        return median([await batch_mean(run, 10 + b * size, size) for b in range(batches)])


async def run(config: Config) -> None:
    seconds, batches = (0.02, 3) if config.quick else (0.1, 7)
    rows = []
    for backend in config.usable():
        if "flows" not in backend.systems:
            continue
        times = {mode: await measure(backend, mode, seconds, batches) for mode in MODES}
        rows.append(
            [backend.name]
            + [us(times[mode]) for mode in MODES]
            + [ratio(times["async"], times["sync"]), ratio(times["exit"], times["sync"])]
        )
    table(
        "10. durability modes: µs per invoke of the 10-node chain (11 checkpoints in sync and async, 1 in exit)",
        ["backend", *(f"{mode} µs" for mode in MODES), "async÷sync", "exit÷sync"],
        rows,
        [
            "sync: each checkpoint written before the next node; async: written while the next node runs "
            "(nodes here take no time, so nothing overlaps: the pipeline's own cost); exit: one write per run",
            "what a crash can run again: sync nothing that finished, async the last finished node, exit the run",
        ]
        + config.notes(),
    )
