"""Every example of the seed page (docs: checkpointer), against every backend."""

from __future__ import annotations

import uuid

import pytest

from tests.flows_fixtures import seed_flow


@pytest.fixture
def flow(checkpointer):
    return seed_flow(checkpointer)


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_without_a_checkpointer_every_call_starts_from_scratch():
    flow = seed_flow(None)
    first = await flow.invoke({"messages": ["a"], "status": "start", "counter": 0}, session_id="user-123")
    second = await flow.invoke({"messages": ["b"], "status": "start", "counter": 0}, session_id="user-123")
    assert first == {"messages": ["a"], "status": "start", "counter": 1}
    assert second == {"messages": ["b"], "status": "start", "counter": 1}


async def test_automatic_continuation(flow, user):
    result = await flow.invoke({"messages": [], "status": "start", "counter": 0}, session_id=user)
    assert result == {"messages": [], "status": "start", "counter": 1}
    result = await flow.invoke({"messages": ["new input"], "status": "continuing"}, session_id=user)
    # "messages" reducer appends, others replace; counter is kept from the checkpoint
    assert result == {"messages": ["new input"], "status": "continuing", "counter": 2}
    result = await flow.invoke({"messages": ["more"]}, session_id=user)
    assert result["messages"] == ["new input", "more"] and result["status"] == "continuing"


async def test_continue_without_any_updates(flow, user):
    await flow.invoke({"messages": ["hi"], "status": "start", "counter": 0}, session_id=user)
    result = await flow.invoke(None, session_id=user)
    assert result == {"messages": ["hi"], "status": "start", "counter": 2}


async def test_new_session_starts_fresh(flow, user):
    await flow.invoke({"messages": ["old"], "status": "start", "counter": 5}, session_id=user)
    other = f"{user}-456"
    result = await flow.invoke({"messages": [], "status": "start", "counter": 0}, session_id=other)
    assert result == {"messages": [], "status": "start", "counter": 1}


async def test_reset_session_allows_a_fresh_start(flow, user):
    await flow.invoke({"messages": ["a"], "status": "start", "counter": 0}, session_id=user)
    await flow.invoke({"messages": ["b"]}, session_id=user)
    await flow.reset_session(user)
    assert await flow.get_state(user) is None
    result = await flow.invoke({"messages": [], "status": "fresh"}, session_id=user)
    assert result == {"messages": [], "status": "fresh", "counter": 1}


async def test_inspecting_state(flow, user):
    await flow.invoke({"messages": ["a"], "status": "start", "counter": 0}, session_id=user)
    await flow.invoke({"messages": ["b"], "status": "done"}, session_id=user)
    state = await flow.get_state(user)
    assert state == {"messages": ["a", "b"], "status": "done", "counter": 2}
    checkpoints = await flow.list_checkpoints(user, limit=5)
    assert len(checkpoints) == 4  # two turns: input + node each
    assert [c.node for c in checkpoints] == ["count", "__start__", "count", "__start__"]
    created = [c.created_at for c in checkpoints]
    assert created == sorted(created, reverse=True)
    assert checkpoints[0].next == () and checkpoints[1].next == ("count",)
    # the page's decision example
    if state and state.get("status") == "done":
        await flow.reset_session(user)
        await flow.invoke({"messages": [], "status": "restart"}, session_id=user)
    assert await flow.get_state(user) == {"messages": [], "status": "restart", "counter": 1}
