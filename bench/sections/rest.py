"""REST invoke: latency and throughput over HTTP, next to the same invoke in process.

The demo project (``tests.api.live_settings``) runs under uvicorn with 2 worker
processes on a fresh PostgreSQL database (``DjangoCheckpointer``, the default
inside Django; ``CONN_MAX_AGE=60``). ``clients`` concurrent clients (1, 8, 32),
each on a session of its own, post one chat turn after another to
``POST /api/flows/support/sessions/{id}/invoke/`` with token authentication:
the support desk's ``classify`` -> ``answer_faq`` (a streamed reply, no token
delay), three checkpoints per turn, a ~200-byte user message. Each request's
latency is recorded (p50, p99) and throughput is turns per second over the
whole run.

``in process`` runs the same turns, at the same concurrency, with
``flow.invoke`` on the same database from the benchmark's own process (one
event loop): what the HTTP layer — uvicorn, Django, DRF, authentication, the
session's ownership row, JSON — adds is the ratio. The client, the two
workers and PostgreSQL share the machine's cores.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from report import ratio, table

from . import Config

CLIENTS = (1, 8, 32)
TEXT = "what are your opening hours? " + "I would like to come by the shop with a parcel to return, " * 3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(clients: int, turns: int, call: Callable[[int, int], Awaitable[None]]) -> tuple[list[float], float]:
    """``clients`` loops of ``turns`` calls each; (latencies in ms, turns per second)."""
    latencies: list[float] = []

    async def client(n: int) -> None:
        for turn in range(turns):
            began = time.perf_counter()
            await call(n, turn)
            latencies.append((time.perf_counter() - began) * 1e3)

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies, clients * turns / (time.perf_counter() - began)


async def run(config: Config) -> None:
    if not os.environ.get("FLOWS_TEST_POSTGRES_URL"):
        print("  skipped: FLOWS_TEST_POSTGRES_URL is not set (`make bench` sets it)")
        return
    import httpx
    from site_django import django_on_postgres

    database_url = django_on_postgres()
    from flows.registry import get_flow
    from tests.servers import start_server

    turns = 5 if config.quick else 40
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        env = {"FLOWS_DEMO_TOKEN_DELAY": "0"}
        with start_server(Path(workdir), database_url=database_url, workers=2, env=env) as server:
            inline = get_flow("support")
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with server.async_client(limits=limits) as http:
                for clients in CLIENTS:
                    async def over_http(n: int, turn: int, clients: int = clients) -> None:
                        response = await http.post(f"/api/flows/support/sessions/http-{clients}-{n}/invoke/",
                                                   json={"input": {"messages": [f"{TEXT} ({turn})"]}})
                        response.raise_for_status()

                    async def locally(n: int, turn: int, clients: int = clients) -> None:
                        await inline.invoke({"messages": [f"{TEXT} ({turn})"]}, session_id=f"local-{clients}-{n}")

                    await load(clients, 2, over_http)  # connections, caches, imports
                    await load(clients, 2, locally)
                    http_ms, http_rate = await load(clients, turns, over_http)
                    local_ms, local_rate = await load(clients, turns, locally)
                    rows.append([
                        str(clients),
                        f"{statistics.median(http_ms):.1f}", f"{percentile(http_ms, 0.99):.1f}", f"{http_rate:.0f}",
                        f"{statistics.median(local_ms):.1f}", f"{percentile(local_ms, 0.99):.1f}",
                        f"{local_rate:.0f}",
                        ratio(statistics.median(http_ms), statistics.median(local_ms)),
                        ratio(local_rate, http_rate),
                    ])
    table(
        f"7. REST invoke vs in-process invoke (support flow, PostgreSQL, {turns} turns per client)" + config.tag,
        ["clients", "http p50 ms", "http p99 ms", "http turns/s", "local p50 ms", "local p99 ms",
         "local turns/s", "p50 http ÷ local", "rate local ÷ http"],
        rows,
        notes=["http: 2 uvicorn workers, token auth, JSON; local: flow.invoke in the benchmark's process"],
    )
