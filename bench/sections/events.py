"""Recording runs: what the durable event log costs a checkpointed step, and how soon a watcher sees events.

On a fresh PostgreSQL database through the Django ORM (``DjangoCheckpointer``,
as inside Django), the 10-node ``chain`` is invoked turn after turn with the
run recording off, on with the database log (a ``Run`` row and its
``RunEvent`` rows, batched every 50 ms) and on with the Redis log (the
``Run`` row, the events in Redis streams), batches alternating; ``µs/step``
is an invoke ÷ 10, medians of batch means. Budget (issue 8): the database
log slows a checkpointed step by at most 10 %.

Latency: a streaming node emits a token every 20 ms; a follower reading the
log (``follow_session``, what a socket without a cross-process channel layer
and every resumable stream do) runs in the same process and records when
each event reaches it. Batches are written every 50 ms; the database
follower polls every 100 ms (expected: ~75 ms on average, 150 ms at worst,
plus the queries), the Redis one blocks in ``XREAD`` (expected: the batch
delay alone). Budget (issue 8): the first event reaches a watcher within
250 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

from peers import State, build, chain, message
from report import ratio, table, us
from timing import batch_mean, calibrate, median

from . import Config

TURNS_PER_SESSION = 20
TOKENS = 20
TOKEN_GAP = 0.02


#: how runs are recorded: not at all, with their events in the database, or in Redis
MODES = ("off", "database log", "Redis log")


async def run(config: Config) -> None:
    import os

    if not os.environ.get("FLOWS_TEST_POSTGRES_URL") or not os.environ.get("FLOWS_TEST_REDIS_URL"):
        print("  skipped: FLOWS_TEST_POSTGRES_URL / FLOWS_TEST_REDIS_URL are not set (`make bench` sets them)")
        return
    from site_django import django_on_postgres

    django_on_postgres()
    await measure_overhead(config)
    await measure_latency(config)


@contextlib.contextmanager
def event_log(mode: str) -> Iterator[None]:
    """``FLOWS["EVENTS_REDIS_URL"]`` for the mode, while the block runs."""
    import os

    from django.conf import settings
    from django.test.utils import override_settings

    url = os.environ["FLOWS_TEST_REDIS_URL"] if mode == "Redis log" else None
    with override_settings(FLOWS={**settings.FLOWS, "EVENTS_REDIS_URL": url, "EVENTS_REDIS_PREFIX": "bench:"}):
        yield


async def measure_overhead(config: Config) -> None:
    from flows.checkpointer import DjangoCheckpointer
    from flows.runs.hooks import RunHooks

    flows = {}
    for mode in MODES:
        name = f"bench-{MODES.index(mode)}"
        engine = build("flows", chain(10), DjangoCheckpointer(flow_name=name))
        flows[mode] = engine
        if mode != "off":
            _engine_of(engine).add_hooks(RunHooks(name))

    def caller(mode: str):
        flow = flows[mode]

        async def call(i: int) -> None:
            await flow.invoke({"messages": [message(i)]}, f"s{i // TURNS_PER_SESSION}")

        return call

    sizes = {}
    for mode in MODES:
        with event_log(mode):
            sizes[mode] = await calibrate(caller(mode), 0.02 if config.quick else 0.5)
    rounds = 3 if config.quick else 9
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    offset = 10_000
    for _ in range(rounds):
        for mode in MODES:
            with event_log(mode):
                results[mode].append(await batch_mean(caller(mode), offset, sizes[mode]) / 10)
        offset += max(sizes.values()) + TURNS_PER_SESSION
    cost = {mode: median(results[mode]) for mode in MODES}
    verdict = "met" if cost["database log"] <= cost["off"] * 1.10 else "MISSED"
    table(
        f"8. recording runs: cost per checkpointed step (10-node chain, DjangoCheckpointer on PostgreSQL; "
        f"median of {rounds} batches)" + config.tag,
        ["recording", "µs/step", "vs off"],
        [[mode, us(cost[mode]), ratio(cost[mode], cost["off"])] for mode in MODES],
        notes=[f"budget: the database log slows a step by at most 10 % -> {verdict}"],
    )


def _engine_of(flow: Any) -> Any:
    """The FlowEngine behind a bench ``Flow`` (its invoke closure holds it)."""
    return flow.invoke.__closure__[0].cell_contents  # type: ignore[union-attr]


async def measure_latency(config: Config) -> None:
    from flows.checkpointer import DjangoCheckpointer
    from flows.engine import END, START, FlowEngine
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
    figures: dict[str, list[float]] = {}
    for mode in MODES[1:]:
        with event_log(mode):
            figures[mode] = await _latencies(config, engine, emitted, mode)
    budget = "met" if max(column[0] for column in figures.values()) <= 250 else "MISSED"
    rows = ["first event, from the call", "token emitted -> seen, median", "token emitted -> seen, p95",
            "token emitted -> seen, max"]
    table(
        "9. a watcher following the event log (PostgreSQL, same process; a token every 20 ms; ms)" + config.tag,
        ["measure", *MODES[1:]],
        [[row, *(f"{figures[mode][n]:.0f}" for mode in MODES[1:])] for n, row in enumerate(rows)],
        notes=[f"budget: the first event reaches a watcher within 250 ms -> {budget}",
               "with channels-redis, sockets also get each batch from the channel layer as it is written"],
    )


async def _latencies(config: Config, engine: Any, emitted: dict[str, float], mode: str) -> list[float]:
    """First event, then token latency median / p95 / max, in ms."""
    from flows.runs import follow

    latencies: list[float] = []
    first: list[float] = []
    for turn in range(2 if config.quick else 10):
        session = f"live-{MODES.index(mode)}-{turn}"
        after = await follow.newest_session_event("bench-live", session)
        received: dict[str, float] = {}
        started = time.perf_counter()

        async def watch(session: str, after: int, received: dict[str, float]) -> None:
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

        watcher = asyncio.ensure_future(watch(session, after, received))
        await engine.invoke({"counter": 0}, session_id=session)
        await asyncio.wait_for(watcher, 10)
        first.append((received["run_started"] - started) * 1e3)
        latencies += [(received[token] - at) * 1e3 for token, at in emitted.items() if token in received]
        emitted.clear()
    return [median(first), median(latencies), statistics.quantiles(latencies, n=20)[-1], max(latencies)]
