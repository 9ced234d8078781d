"""Cost per checkpointed node step, per backend, next to the raw-write floor.

Each system runs the 10-node ``chain`` and the 1-node ``chain`` on its own
fresh store (see backends.py); every invoke is a new turn with a ~200-byte
user message, and a new session starts every 20 turns, so states stay small
(≤ 20 messages) whatever the batch size. After a warm-up (tables created,
connections open) that also sizes the batches (~0.1 s each), batches of
10-node and 1-node invokes alternate; the figures are medians of the batch
means:

* ``µs/step`` — 10-node invoke ÷ 10: what a node step costs in a run, all in
  (session lock taken and released once per invoke, the input checkpoint, and
  for flows 11 checkpoints per invoke);
* ``marginal`` — (10-node − 1-node) ÷ 9: what one more node step adds, i.e.
  one checkpoint write plus the engine's step, without the per-invoke costs;
* ``per invoke`` — 1-node invoke − marginal: the fixed cost of an invoke
  (lease, reading the new writes, input checkpoint, release).

The floor (floor.py) writes flows' average bytes per checkpoint with the raw
driver, measured before and after the systems (the mean of the two medians:
a shared machine's round trips drift). Budgets: in memory ≤ 20 µs/step
(issue 2); durable ≤ 1.5× the floor (issue 3), checked on ``marginal``
against the one-statement floor.
"""

from __future__ import annotations

from backends import Backend
from floor import Floor
from floor import measure as measure_floor
from peers import build, chain, message
from report import ratio, table, us
from timing import batch_mean, calibrate, median

from . import Config, Failures

LONG, SHORT = 10, 1
TURNS_PER_SESSION = 20


async def flows_checkpoint_bytes() -> int:
    """Average bytes flows stores per checkpoint in a 10-node invoke (the floor's payload)."""
    from flows.engine.checkpointers import InMemoryCheckpointer

    cp = InMemoryCheckpointer()
    flow = build("flows", chain(LONG), cp)
    await flow.invoke({"messages": [message(0)]}, "s")
    before = cp.get_stats()
    await flow.invoke({"messages": [message(1)]}, "s")
    after = cp.get_stats()
    return round((after["bytes"] - before["bytes"]) / (after["checkpoints"] - before["checkpoints"]))


async def measure_system(backend: Backend, system: str, seconds: float, batches: int) -> tuple[float, float]:
    """Median µs per 10-node invoke and per 1-node invoke."""
    async with backend.open(system) as store:
        long = build(system, chain(LONG), store.checkpointer, sync=store.sync)
        short = build(system, chain(SHORT), store.checkpointer, sync=store.sync)

        async def run_long(i: int) -> None:
            await long.invoke({"messages": [message(i)]}, f"long-{i // TURNS_PER_SESSION}")

        async def run_short(i: int) -> None:
            await short.invoke({"messages": [message(i)]}, f"short-{i // TURNS_PER_SESSION}")

        k_long = await calibrate(run_long, seconds)
        k_short = await calibrate(run_short, seconds)
        longs, shorts = [], []
        for b in range(batches):
            longs.append(await batch_mean(run_long, 10 + b * k_long, k_long))
            shorts.append(await batch_mean(run_short, 10 + b * k_short, k_short))
    return median(longs), median(shorts)


async def run(config: Config) -> None:
    seconds, batches, writes = (0.02, 3, 30) if config.quick else (0.1, 7, 300)
    payload = await flows_checkpoint_bytes()
    side_rows, flows_rows = [], []
    failures = Failures()
    for backend in config.usable():
        before = await measure_floor(backend, payload, writes, batches) if backend.floor else None
        timings: dict[str, tuple[float, float]] = {}
        for system in config.systems_of(backend):
            try:
                timings[system] = await measure_system(backend, system, seconds, batches)
            except Exception as error:  # noqa: BLE001 (a peer that cannot run here: noted, not fatal)
                failures.add(backend.name, system, error)
        after = await measure_floor(backend, payload, writes, batches) if backend.floor else None
        floor = bracket(before, after)
        per_step = {system: t_long / LONG for system, (t_long, _) in timings.items()}
        if "flows" in timings:
            t_long, t_short = timings["flows"]
            marginal = (t_long - t_short) / (LONG - SHORT)
            flows_rows.append(flows_row(backend, t_long / LONG, marginal, t_short - marginal, floor))
        row = [backend.name, us(floor.single) if floor else "-"]
        for system in config.systems:
            value = per_step.get(system)
            if system == "flows":
                row += [us(value), ratio(value, floor.single) if floor else "-"]
            else:
                row += [us(value), ratio(value, per_step.get("flows"))]
        side_rows.append(row)
    header = ["backend", "floor µs"]
    for system in config.systems:
        header += [f"{system} µs/step", "÷ floor" if system == "flows" else "vs flows"]
    notes = config.notes() + failures.notes
    table(
        f"2. cost per checkpointed node step ({LONG}-node chain, one ~200-byte message per invoke; "
        f"median of {batches} batches of ~{seconds:g} s)",
        header,
        side_rows,
        notes,
    )
    table(
        f"3. flows per step vs the floor (raw driver write of {payload} bytes = flows' average "
        f"checkpoint; median of {batches} x {writes} writes)",
        [
            "backend",
            "µs/step",
            "marginal",
            "per invoke",
            "floor 1 stmt",
            "floor txn",
            "step ÷ floor",
            "marginal ÷ floor",
            "budget",
        ],
        flows_rows,
        [
            "floor 1 stmt: one INSERT in autocommit (Redis: one SET); floor txn: BEGIN; INSERT; COMMIT",
            "budget: memory ≤ 20 µs/step; durable: marginal ≤ 1.5x floor 1 stmt",
        ],
    )


def bracket(before: Floor | None, after: Floor | None) -> Floor | None:
    """The floor measured before and after the systems: the mean of the two medians."""
    if before is None or after is None:
        return None
    txn = (before.txn + after.txn) / 2 if before.txn is not None and after.txn is not None else None
    return Floor((before.single + after.single) / 2, txn)


def flows_row(backend: Backend, step: float, marginal: float, fixed: float, floor: Floor | None) -> list[str]:
    if floor is None:
        verdict = "met" if step <= 20 else "MISSED"
    else:
        verdict = "met" if marginal <= 1.5 * floor.single else "MISSED"
    return [
        backend.name,
        us(step),
        us(marginal),
        us(fixed),
        us(floor.single) if floor else "-",
        us(floor.txn) if floor else "-",
        ratio(step, floor.single) if floor else "-",
        ratio(marginal, floor.single) if floor else "-",
        verdict,
    ]
