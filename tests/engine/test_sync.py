"""Driving a flow from sync code."""

from __future__ import annotations

import pytest

from flows.engine import run_sync
from flows.engine.checkpointers import InMemoryCheckpointer
from tests.flows_fixtures import seed_flow


def test_sync_twin_runs_every_call_without_loop_errors():
    flow = seed_flow(InMemoryCheckpointer())
    assert flow.sync.invoke({"messages": ["a"], "status": "s", "counter": 0}, session_id="x")["counter"] == 1
    assert flow.sync.invoke(None, session_id="x")["counter"] == 2
    assert flow.sync.get_state("x")["messages"] == ["a"]
    history = flow.sync.list_checkpoints("x", limit=5)
    assert len(history) == 4
    assert flow.sync.get_checkpoint("x", history[-1].checkpoint_id).state["counter"] == 0
    flow.sync.update_state("x", {"status": "edited"})
    events = [e["event"] for e in flow.sync.stream(None, session_id="x")]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    flow.sync.reset_session("x")
    assert flow.sync.get_state("x") is None


async def test_sync_call_inside_a_running_loop_is_refused():
    flow = seed_flow(InMemoryCheckpointer())
    with pytest.raises(RuntimeError, match="use the async API"):
        flow.sync.get_state("x")
    with pytest.raises(RuntimeError, match="use the async API"):
        run_sync(flow.get_state("x"))
