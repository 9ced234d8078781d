"""Benchmarks flows side by side with its peers, printing ratios.

    make bench                      # everything, peers installed in .venv-bench
    .venv-bench/bin/python bench/run.py --quick

Sections:
  engine   µs per node step without a checkpointer
  memory   µs per checkpointed node step with the in-memory checkpointers,
           early vs late in a long conversation (flat is the goal)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import RUNNERS, memory_checkpointers  # noqa: E402

NODES = 10


def table(title: str, rows: list[tuple[str, float]], unit: str) -> None:
    base = dict(rows).get("flows")
    print(f"\n{title}")
    for name, value in rows:
        ratio = f"{value / base:6.1f}x flows" if base else ""
        print(f"  {name:<10} {value:10.1f} {unit}   {ratio}")


async def engine_overhead(invokes: int) -> list[tuple[str, float]]:
    rows = []
    for name, build in RUNNERS.items():
        run = build(NODES)
        await run({"messages": ["hi"], "counter": 0}, None)  # warm up
        start = time.perf_counter()
        for _ in range(invokes):
            await run({"messages": ["hi"], "counter": 0}, None)
        rows.append((name, (time.perf_counter() - start) / (invokes * NODES) * 1e6))
    return rows


async def memory_conversation(turns: int, window: int) -> list[tuple[str, float, float]]:
    rows = []
    for name, make_checkpointer in memory_checkpointers().items():
        run = RUNNERS[name](NODES, make_checkpointer())
        timings = []
        for turn in range(turns):
            start = time.perf_counter()
            await run({"messages": [f"message {turn} " + "x" * 180]}, "bench-session")
            timings.append((time.perf_counter() - start) / NODES * 1e6)
        rows.append((name, sum(timings[:window]) / window, sum(timings[-window:]) / window))
    return rows


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--only", choices=["engine", "memory"], action="append")
    args = parser.parse_args(argv)
    sections = set(args.only or ["engine", "memory"])
    invokes, turns = (20, 60) if args.quick else (300, 1000)
    print(f"python {sys.version.split()[0]}; {NODES}-node chain; node = bump a counter")
    if "engine" in sections:
        table("engine overhead per node step (no checkpointer)", await engine_overhead(invokes), "µs/step")
    if "memory" in sections:
        rows = await memory_conversation(turns, window=10)
        table(f"in-memory checkpointer, first 10 turns of {turns}", [(n, a) for n, a, _ in rows], "µs/step")
        table(f"in-memory checkpointer, last 10 turns of {turns}", [(n, b) for n, _, b in rows], "µs/step")
        print("  late/early: " + ", ".join(f"{n} {b / a:.2f}x" for n, a, b in rows))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
