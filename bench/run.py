"""Benchmarks flows side by side with its peers (llmfy, LangGraph), printing ratios.

    make bench                                     # everything, twice: fsync off, then fsync on
    make bench BENCH_ARGS="--quick"                # smoke run of both passes, a few minutes
    make bench BENCH_ARGS="--durable"              # the durable pass only (or BENCH_PASSES=fast)
    make bench BENCH_ARGS="--long"                 # conversations and head reads out to 10,000 turns
    scripts/with-test-services .venv-bench/bin/python bench/run.py [--quick] [--long] [--durable]
        [--only SECTION] [--backend NAME] [--system NAME]

Sections (see bench/sections/):
  engine        µs per node step without a checkpointer
  steps         µs per checkpointed node step per backend; flows next to the
                raw-write floor (a raw driver INSERT + COMMIT of the same bytes)
                with the issue's targets; PostgreSQL commits and WAL flushes per invoke
  conversation  one long conversation per message shape (dict and str): µs per
                turn at turns 0, 100, 1,000 (and 10,000 with --long); head reads
                cold and warm at 100, 1,000 (10,000) turns; bytes stored
  history       head state and latest 5 checkpoints of one session among many
  rest          REST invoke latency and throughput (2 uvicorn workers, PostgreSQL) vs in process
  events        recording runs: cost per checkpointed step on and off; a log watcher's latency
  durability    flows' durability modes (sync, async, exit) side by side per backend

Servers and modes: the servers come from FLOWS_TEST_POSTGRES_URL /
FLOWS_TEST_MARIADB_URL / FLOWS_TEST_REDIS_URL (scripts/with-test-services sets
them); a backend without its server is skipped with a note. The servers run
fast (fsync off) unless scripts/with-test-services is told FLOWS_TEST_DURABLE=1,
which `make bench` does when BENCH_ARGS contains --durable. Either way the run
asks each server (SHOW fsync, synchronous_commit, full_page_writes;
@@innodb_flush_log_at_trx_commit; CONFIG GET appendonly, appendfsync), prints
what they said, and tags every table measured on them with that mode;
--durable refuses to run on servers that are not durable.

Every figure is a median (of batch means, or of single calls); the machine may
be shared, so check the load averages printed at the start and the end.
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
from machine import ask_servers, describe, durability, load
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
        "--long",
        action="store_true",
        help="long mode: the conversation section runs flows to 10,000 turns (slow)",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="require servers with durability on (make bench starts them so with this flag)",
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
    found = ask_servers()
    mode = durability(found)
    config = Config(
        quick=args.quick,
        backends=backends,
        systems=systems,
        long=args.long and not args.quick,
        durable=args.durable,
        mode=mode,
    )
    started = time.perf_counter()
    flags = [
        "--quick: smoke run, few repetitions" if args.quick else "",
        ("--long: ignored with --quick" if args.quick else "--long: out to 10,000 turns")
        if args.long
        else "",
        "--durable" if args.durable else "",
    ]
    print("flows benchmark" + "".join(f" ({flag})" for flag in flags if flag))
    for line in describe(found):
        print("  " + line)
    print(f"  servers' durability, as they report it: {mode}")
    if args.durable and mode != "durable":
        weak = ", ".join(s.describe() for s in found if not s.durable) or "no servers found"
        sys.exit(
            f"--durable: these servers are not durable: {weak}. "
            "Start them with FLOWS_TEST_DURABLE=1 scripts/with-test-services "
            "(make bench does, given --durable)."
        )
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
