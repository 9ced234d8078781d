"""Benchmarks flows side by side with its peers (llmfy, LangGraph), printing ratios.

    make bench                                     # servers started for you, everything
    make bench BENCH_ARGS="--quick"                # smoke run, under ~2 minutes
    scripts/with-test-services .venv-bench/bin/python bench/run.py [--quick] [--only SECTION]

Sections (see bench/sections/):
  engine        µs per node step without a checkpointer
  steps         µs per checkpointed node step per backend, and flows next to the
                raw-write floor (a raw driver INSERT + COMMIT of the same bytes)
  conversation  a long conversation: µs per turn early vs late, bytes stored
  history       head state and latest 5 checkpoints of one session among many
  rest          REST invoke latency and throughput (2 uvicorn workers, PostgreSQL) vs in process
  events        recording runs: cost per checkpointed step on and off; a log watcher's latency

The servers come from FLOWS_TEST_POSTGRES_URL / FLOWS_TEST_MARIADB_URL /
FLOWS_TEST_REDIS_URL (scripts/with-test-services sets them); a backend without
its server is skipped with a note. Every figure is a median (of batch means,
or of single calls); the machine may be shared, so check the load averages
printed at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import all_backends
from machine import describe, load
from peers import SYSTEMS
from sections import SECTIONS, Config


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few repetitions, short histories (smoke test)",
    )
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        metavar="SECTION",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--backend",
        choices=list(all_backends()),
        action="append",
        metavar="NAME",
        help=f"only this backend row (repeatable): {', '.join(all_backends())}",
    )
    parser.add_argument(
        "--system",
        choices=SYSTEMS,
        action="append",
        help="only these systems (repeatable)",
    )
    return parser.parse_args(argv)


async def main(argv: list[str]) -> None:
    args = parse(argv)
    backends = all_backends()
    if args.backend:
        backends = {name: b for name, b in backends.items() if name in args.backend}
    systems = tuple(s for s in SYSTEMS if not args.system or s in args.system)
    config = Config(quick=args.quick, backends=backends, systems=systems)
    started = time.perf_counter()
    print("flows benchmark" + (" (--quick: smoke run, few repetitions)" if args.quick else ""))
    for line in describe():
        print("  " + line)
    for section in args.only or SECTIONS:
        module = importlib.import_module(f"sections.{section}")
        began = time.perf_counter()
        print(f"\n[{section}] load average {load()}", flush=True)
        await module.run(config)
        print(
            f"[{section}] {time.perf_counter() - began:.0f} s, load average {load()}",
            flush=True,
        )
    print(f"\ndone in {time.perf_counter() - started:.0f} s; load average now {load()}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
