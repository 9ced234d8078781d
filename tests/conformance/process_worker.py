"""A worker process for the cross-process tests.

``python -m tests.conformance.process_worker MODE SPEC_JSON SESSION DIR [ARGS]``
rebuilds the checkpointer from the backend spec (tests.backends.BackendSpec)
and drives one flow:

* ``append NAME COUNT`` — COUNT invokes on SESSION, each appending one message;
* ``crash [DURABILITY]`` — runs a -> b -> c; ``b`` SIGKILLs its own process the
  first time; every node call is logged in DIR/calls;
* ``stall NAME`` — one invoke; the first worker to reach the node writes
  DIR/started and waits for DIR/go; exits 3 if its write is refused with LeaseLost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from flows.engine import END, START, FlowEngine, LeaseLost
from tests.backends import BackendSpec
from tests.flows_fixtures import AppState, seed_flow

LEASE_LOST_EXIT = 3


def crash_flow(checkpointer, folder: Path, durability: str = "sync") -> FlowEngine:
    def node(name: str):
        def run(state):
            with open(folder / "calls", "a") as log:
                log.write(name + "\n")
            if name == "b" and not (folder / "crashed").exists():
                (folder / "crashed").touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return {"messages": [name]}

        return run

    flow = FlowEngine(AppState, checkpointer, durability=durability)
    for name in "abc":
        flow.add_node(name, node(name))
    flow.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return flow


def stall_flow(checkpointer, folder: Path, name: str) -> FlowEngine:
    async def wait(state):
        if not (folder / "started").exists():
            (folder / "started").touch()
            while not (folder / "go").exists():
                await asyncio.sleep(0.01)
        return {"messages": [f"{name} finished"]}

    flow = FlowEngine(AppState, checkpointer)
    flow.add_node("wait", wait).add_edge(START, "wait").add_edge("wait", END)
    return flow


async def main(mode: str, spec_json: str, session_id: str, folder: Path, *args: str) -> int:
    checkpointer = BackendSpec.from_json(spec_json).create()
    try:
        if mode == "append":
            name, count = args[0], int(args[1])
            flow = seed_flow(checkpointer)
            for i in range(count):
                await flow.invoke({"messages": [f"{name}-{i}"]}, session_id=session_id)
        elif mode == "crash":
            await crash_flow(checkpointer, folder, *args).invoke(
                {"messages": ["go"]} if not (folder / "crashed").exists() else None, session_id=session_id
            )
        elif mode == "stall":
            try:
                await stall_flow(checkpointer, folder, args[0]).invoke({"messages": [args[0]]}, session_id=session_id)
            except LeaseLost:
                return LEASE_LOST_EXIT
        return 0
    finally:
        close = getattr(checkpointer, "aclose", None)
        if close is not None:
            await close()


if __name__ == "__main__":
    mode, spec, session, folder, *rest = sys.argv[1:]
    sys.exit(asyncio.run(main(mode, spec, session, Path(folder), *rest)))
