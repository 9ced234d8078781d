"""One run per session across OS processes, crash recovery after SIGKILL, and
fencing of a stalled worker — against every durable backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.backends import DURABLE, BackendSpec, backend_params
from tests.conformance.process_worker import LEASE_LOST_EXIT
from tests.flows_fixtures import seed_flow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=[p for p in backend_params() if p.values[0] in DURABLE])
def backend(request, tmp_path):
    from tests.backends import backend_specs

    return backend_specs(str(tmp_path))[request.param]()


def worker(mode: str, spec: BackendSpec, session_id: str, folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "tests.conformance.process_worker",
            mode, spec.to_json(), session_id, str(folder), *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> int:
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    if process.returncode not in (0, LEASE_LOST_EXIT, -signal.SIGKILL):
        raise AssertionError(f"worker failed ({process.returncode}):\n{err}")
    return process.returncode


async def close(checkpointer) -> None:
    if hasattr(checkpointer, "aclose"):
        await checkpointer.aclose()


async def test_four_processes_ten_invokes_each_leave_forty_messages(backend, tmp_path):
    session_id = f"p-{uuid.uuid4().hex[:10]}"
    processes = [worker("append", backend, session_id, tmp_path, f"w{n}", "10") for n in range(4)]
    for process in processes:
        assert finish(process) == 0
    checkpointer = backend.create()
    try:
        flow = seed_flow(checkpointer)
        state = await flow.get_state(session_id)
        assert len(state["messages"]) == 40
        assert sorted(state["messages"]) == sorted(f"w{n}-{i}" for n in range(4) for i in range(10))
        for n in range(4):  # each worker's messages in its own order
            mine = [m for m in state["messages"] if m.startswith(f"w{n}-")]
            assert mine == [f"w{n}-{i}" for i in range(10)]
        history = await flow.list_checkpoints(session_id, limit=200)
        assert len(history) == 80
        assert [c.node for c in history] == ["count", "__start__"] * 40
        assert [c.parent_id for c in history[:-1]] == [c.checkpoint_id for c in history[1:]]
        assert state["counter"] == 40
    finally:
        await close(checkpointer)


#: what each durability mode may run again after a SIGKILL in node b, and what the state ends as
AFTER_A_CRASH = {
    "sync": ([["a", "b", "b", "c"]], ["go", "a", "b", "c"]),  # no finished node again
    "async": ([["a", "b", "b", "c"], ["a", "b", "a", "b", "c"]], ["go", "a", "b", "c"]),  # at most the last one
    "exit": ([["a", "b", "a", "b", "c"]], ["a", "b", "c"]),  # the whole run, its input too
}


@pytest.mark.parametrize("durability", list(AFTER_A_CRASH))
async def test_a_sigkilled_worker_is_resumed_by_another_after_the_lease_expires(backend, tmp_path, durability):
    spec = BackendSpec(backend.name, backend.factory, backend.args, {**backend.kwargs, "lease_seconds": 1.0})
    session_id = f"k-{uuid.uuid4().hex[:10]}"
    assert finish(worker("crash", spec, session_id, tmp_path, durability)) == -signal.SIGKILL
    started = time.monotonic()
    assert finish(worker("crash", spec, session_id, tmp_path, durability)) == 0
    assert time.monotonic() - started < 60
    calls, messages = AFTER_A_CRASH[durability]
    assert (tmp_path / "calls").read_text().split() in calls
    checkpointer = backend.create()
    try:
        state = await seed_flow(checkpointer).get_state(session_id)
        assert state["messages"] == messages
    finally:
        await close(checkpointer)


async def test_a_stalled_worker_whose_lease_was_taken_over_cannot_write(backend, tmp_path):
    spec = BackendSpec(backend.name, backend.factory, backend.args, {**backend.kwargs, "lease_seconds": 1.0})
    session_id = f"f-{uuid.uuid4().hex[:10]}"
    stalled = worker("stall", spec, session_id, tmp_path, "first")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert stalled.poll() is None, stalled.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(stalled.pid, signal.SIGSTOP)
        try:
            assert finish(worker("stall", spec, session_id, tmp_path, "second")) == 0
        finally:
            os.kill(stalled.pid, signal.SIGCONT)
        (tmp_path / "go").touch()
        assert finish(stalled) == LEASE_LOST_EXIT
    finally:
        if stalled.poll() is None:  # never leave a worker polling for ever
            stalled.kill()
            stalled.wait()
    checkpointer = backend.create()
    try:
        state = await seed_flow(checkpointer).get_state(session_id)
        assert state["messages"] == ["first", "second", "second finished"]
    finally:
        await close(checkpointer)
