"""Recording runs: what the durable event log costs a checkpointed step, and how soon a watcher sees events.

On a fresh PostgreSQL database through the Django ORM (``DjangoCheckpointer``,
as inside Django), the 10-node ``chain`` is invoked turn after turn with the
run recording on (``RunHooks``: a ``Run`` row and its ``RunEvent`` rows,
batched every 50 ms) and off, batches alternating; ``µs/step`` is an invoke
÷ 10, medians of batch means. Budget (issue 8): recording slows a
checkpointed step by at most 10 %.

Latency: a streaming node emits a token every 20 ms; a follower reading the
log (``follow_session``, what a socket without a cross-process channel layer
and every resumable stream do) runs in the same process and records when
each event reaches it. The follower polls every 100 ms and batches are
written every 50 ms, so the expected figure is about 75 ms on average and
150 ms at worst, plus the queries. Budget (issue 8): the first event reaches
a watcher within 250 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from peers import State, build, chain, message
from report import ratio, table, us
from timing import batch_mean, calibrate, median

from . import Config

TURNS_PER_SESSION = 20
TOKENS = 20
TOKEN_GAP = 0.02


async def run(config: Config) -> None:
    import os

    if not os.environ.get("FLOWS_TEST_POSTGRES_URL"):
        print("  skipped: FLOWS_TEST_POSTGRES_URL is not set (`make bench` sets it)")
        return
    from site_django import django_on_postgres

    django_on_postgres()
    await measure_overhead(config)
    await measure_latency(config)


async def measure_overhead(config: Config) -> None:
    from flows.checkpointer import DjangoCheckpointer
    from flows.runs.hooks import RunHooks

    flows = {}
    for recording in (False, True):
        name = f"bench-{'on' if recording else 'off'}"
        engine = build("flows", chain(10), DjangoCheckpointer(flow_name=name))
        flows[recording] = engine
        if recording:
            _engine_of(engine).add_hooks(RunHooks(name))

    def caller(recording: bool):
        flow = flows[recording]

        async def call(i: int) -> None:
            await flow.invoke({"messages": [message(i)]}, f"s{i // TURNS_PER_SESSION}")

        return call

    sizes = {r: await calibrate(caller(r), 0.02 if config.quick else 0.1) for r in flows}
    rounds = 3 if config.quick else 7
    results: dict[bool, list[float]] = {False: [], True: []}
    offset = 10_000
    for _ in range(rounds):
        for recording in (False, True):
            results[recording].append(await batch_mean(caller(recording), offset, sizes[recording]) / 10)
        offset += max(sizes.values()) + TURNS_PER_SESSION
    off, on = median(results[False]), median(results[True])
    verdict = "met" if on <= off * 1.10 else "MISSED"
    table(
        f"8. recording runs: cost per checkpointed step (10-node chain, DjangoCheckpointer on PostgreSQL; "
        f"median of {rounds} batches)",
        ["recording", "µs/step", "vs off"],
        [["off", us(off), "1.00x"], ["on", us(on), ratio(on, off)]],
        notes=[f"budget: recording slows a step by at most 10 % -> {verdict}"],
    )


def _engine_of(flow: Any) -> Any:
    """The FlowEngine behind a bench ``Flow`` (its invoke closure holds it)."""
    return flow.invoke.__closure__[0].cell_contents  # type: ignore[union-attr]


async def measure_latency(config: Config) -> None:
    from flows.checkpointer import DjangoCheckpointer
    from flows.engine import END, START, FlowEngine
    from flows.runs import follow
    from flows.runs.hooks import RunHooks

    emitted: dict[str, float] = {}

    async def speak(state: State):
        for n in range(TOKENS):
            token = f"t{n} "
            emitted[token] = time.perf_counter()
            yield token
            await asyncio.sleep(TOKEN_GAP)
        yield {"counter": state.get("counter", 0) + 1}

    engine = FlowEngine(State, DjangoCheckpointer(flow_name="bench-live"), hooks=RunHooks("bench-live"))
    engine.add_node("speak", speak, stream=True).add_edge(START, "speak").add_edge("speak", END).build()
    latencies: list[float] = []
    first: list[float] = []
    for turn in range(2 if config.quick else 10):
        session = f"live-{turn}"
        after = await follow.newest_session_event("bench-live", session)
        received: dict[str, float] = {}
        started = time.perf_counter()

        async def watch() -> None:
            async for stored in follow.follow_session("bench-live", session, after):
                if stored is None:
                    continue
                import json

                event = json.loads(stored.data)
                received.setdefault(event["event"], time.perf_counter())
                if event["event"] == "chunk":
                    received[event["chunk"]] = time.perf_counter()
                if event["event"] == "run_finished":
                    return

        watcher = asyncio.ensure_future(watch())
        await engine.invoke({"counter": 0}, session_id=session)
        await asyncio.wait_for(watcher, 10)
        first.append((received["run_started"] - started) * 1e3)
        latencies += [(received[token] - at) * 1e3 for token, at in emitted.items() if token in received]
        emitted.clear()
    p95 = statistics.quantiles(latencies, n=20)[-1]
    verdict = "met" if median(first) <= 250 else "MISSED"
    table(
        "9. a watcher following the event log (PostgreSQL, same process; a token every 20 ms)",
        ["measure", "ms"],
        [["first event, from the call", f"{median(first):.0f}"],
         ["token emitted -> seen, median", f"{median(latencies):.0f}"],
         ["token emitted -> seen, p95", f"{p95:.0f}"],
         ["token emitted -> seen, max", f"{max(latencies):.0f}"]],
        notes=[f"budget: the first event reaches a watcher within 250 ms -> {verdict}",
               "with channels-redis, sockets get each batch as it is written instead (no polling)"],
    )
