"""Double-texting in the engine, against every backend: ``on_busy="interrupt"``
and ``"rollback"`` take a busy session over from the call holding it."""

from __future__ import annotations

import asyncio
import operator
import uuid
from typing import Annotated, TypedDict

import pytest

from flows.engine import END, START, FlowEngine, LeaseLost, RunSuperseded


class Chat(TypedDict, total=False):
    messages: Annotated[list, operator.add]
    log: Annotated[list, operator.add]


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


class Gate:
    """Holds the ``slow`` node of every message but "quick" until it is opened."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()


def chat_flow(checkpointer, gate: Gate) -> FlowEngine:
    """note -> slow -> reply: each node logs what it saw, so a test can tell what ran on what."""

    def note(state):
        return {"log": [f"noted:{state['messages'][-1]}"]}

    async def slow(state):
        if state["messages"][-1] != "quick":
            gate.entered.set()
            await gate.opened.wait()
        return {"log": [f"slow:{state['messages'][-1]}"]}

    def reply(state):
        return {"log": [f"reply:{state['messages'][-1]}"]}

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("note", note).add_node("slow", slow).add_node("reply", reply)
    flow.add_edge(START, "note").add_edge("note", "slow").add_edge("slow", "reply").add_edge("reply", END)
    return flow


async def _busy(flow: FlowEngine, gate: Gate, session_id: str, message: str = "a") -> asyncio.Task:
    """A call holding the session, waiting in ``slow``."""
    running = asyncio.create_task(flow.invoke({"messages": [message]}, session_id=session_id))
    await gate.entered.wait()
    return running


async def test_interrupt_stops_the_running_call_and_starts_a_new_run_on_its_work(checkpointer):
    gate = Gate()
    flow = chat_flow(checkpointer, gate)
    session_id = sid()
    running = await _busy(flow, gate, session_id)
    first_run = (await flow.get_metadata(session_id)).run_id

    state = await flow.invoke({"messages": ["quick"]}, session_id=session_id, on_busy="interrupt")

    with pytest.raises(RunSuperseded):
        await running
    # "a" was noted (checkpointed) before the stop; the new input ran the whole graph on top of it
    assert state == {"messages": ["a", "quick"], "log": ["noted:a", "noted:quick", "slow:quick", "reply:quick"]}
    head = await flow.get_metadata(session_id)
    assert head.finished and head.run_id != first_run


async def test_rollback_discards_the_running_call_and_starts_from_before_it(checkpointer):
    gate = Gate()
    flow = chat_flow(checkpointer, gate)
    session_id = sid()
    await flow.invoke({"messages": ["quick"]}, session_id=session_id)
    before = await flow.get_metadata(session_id)
    running = await _busy(flow, gate, session_id)
    doomed = (await flow.get_metadata(session_id)).run_id

    state = await flow.invoke({"messages": ["quick"]}, session_id=session_id, on_busy="rollback")

    with pytest.raises(RunSuperseded):
        await running
    assert state["messages"] == ["quick", "quick"] and "noted:a" not in state["log"]
    chain = await flow.list_checkpoints(session_id, limit=100)
    assert doomed not in {meta.run_id for meta in chain}
    assert before.checkpoint_id in {meta.checkpoint_id for meta in chain}


async def test_rollback_of_a_sessions_first_call_leaves_only_the_new_run(checkpointer):
    gate = Gate()
    flow = chat_flow(checkpointer, gate)
    session_id = sid()
    running = await _busy(flow, gate, session_id)

    state = await flow.invoke({"messages": ["quick"]}, session_id=session_id, on_busy="rollback")

    with pytest.raises(RunSuperseded):
        await running
    assert state == {"messages": ["quick"], "log": ["noted:quick", "slow:quick", "reply:quick"]}
    assert len({meta.run_id for meta in await flow.list_checkpoints(session_id, limit=100)}) == 1


async def test_a_superseded_streams_last_event_says_why(checkpointer):
    gate = Gate()
    flow = chat_flow(checkpointer, gate)
    session_id = sid()
    seen: list[dict] = []

    async def follow():
        async for event in flow.stream({"messages": ["a"]}, session_id=session_id):
            seen.append(event)

    following = asyncio.create_task(follow())
    await gate.entered.wait()
    await flow.invoke({"messages": ["quick"]}, session_id=session_id, on_busy="interrupt")
    with pytest.raises(RunSuperseded):
        await following
    assert seen[-1]["event"] == "run_failed" and seen[-1]["error"]["type"] == "RunSuperseded"


async def _left_unfinished(checkpointer) -> tuple[FlowEngine, str]:
    """A session whose run failed halfway (``slow`` raised after ``note`` ran on "a"); ``slow`` works now."""
    outage = {"on": True}

    def slow(state):
        if outage["on"]:
            raise RuntimeError("the model is down")
        return {"log": [f"slow:{state['messages'][-1]}"]}

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("note", lambda s: {"log": [f"noted:{s['messages'][-1]}"]}).add_node("slow", slow)
    flow.add_edge(START, "note").add_edge("note", "slow").add_edge("slow", END)
    session_id = sid()
    with pytest.raises(Exception, match="the model is down"):
        await flow.invoke({"messages": ["a"]}, session_id=session_id)
    outage["on"] = False
    return flow, session_id


async def test_interrupt_starts_over_a_run_left_unfinished(checkpointer):
    """No call holds the session, but one failed halfway: the new input does not continue it."""
    flow, session_id = await _left_unfinished(checkpointer)
    state = await flow.invoke({"messages": ["b"]}, session_id=session_id, on_busy="interrupt")
    assert state["log"] == ["noted:a", "noted:b", "slow:b"]


async def test_wait_still_continues_a_run_left_unfinished(checkpointer):
    flow, session_id = await _left_unfinished(checkpointer)
    state = await flow.invoke({"messages": ["b"]}, session_id=session_id)
    assert state["log"] == ["noted:a", "slow:b"]


async def test_a_holder_elsewhere_writes_nothing_after_the_take_over(durable_backend):
    """A holder this process cannot cancel (another checkpointer, as another process would have)
    finishes its node, and its write is refused."""
    first, second = durable_backend.create(), durable_backend.create()
    try:
        gate = Gate()
        elsewhere, here = chat_flow(first, gate), chat_flow(second, gate)
        session_id = sid()
        running = await _busy(elsewhere, gate, session_id)

        state = await here.invoke({"messages": ["quick"]}, session_id=session_id, on_busy="interrupt")
        gate.opened.set()

        with pytest.raises(LeaseLost, match=f"session {session_id!r}"):  # the session, by its id
            await running
        assert await here.get_state(session_id) == state
        assert "slow:a" not in state["log"]
    finally:
        for checkpointer in (first, second):
            if hasattr(checkpointer, "aclose"):
                await checkpointer.aclose()
