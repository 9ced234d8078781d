"""Engine overhead: µs per node step with no checkpointer.

The 10-node ``chain`` (each node bumps a counter) invoked without a session,
so nothing is saved: what is left is graph traversal, state merging and the
reducers. µs per step = invoke time / 10; median of batch means (each
batch ~0.1 s) after a warm-up. Budget (issue 2): flows ≤ 8 µs/step.
"""

from __future__ import annotations

from peers import Flow, build, chain
from report import ratio, table, us
from timing import batch_mean, calibrate, median

from . import Config

NODES = 10


async def run(config: Config) -> None:
    seconds, batches = (0.02, 3) if config.quick else (0.1, 7)
    results: dict[str, float] = {}
    for system in config.systems:
        flow = build(system, chain(NODES))

        async def once(i: int, flow: Flow = flow) -> None:
            await flow.invoke({"messages": ["hi"], "counter": 0}, None)

        invokes = await calibrate(once, seconds)  # also warms up
        runs = [await batch_mean(once, 0, invokes) for _ in range(batches)]
        results[system] = median(runs) / NODES
    base = results.get("flows")
    rows = [[system, us(v), ratio(v, base)] for system, v in results.items()]
    table(
        f"1. engine overhead per node step, no checkpointer ({NODES}-node chain, "
        f"median of {batches} batches of ~{seconds:g} s)",
        ["system", "µs/step", "vs flows"],
        rows,
        [f"budget: flows ≤ 8 µs/step -> {'met' if base is not None and base <= 8 else 'MISSED'}"]
        if base is not None
        else [],
    )
