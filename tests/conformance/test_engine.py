"""Engine behaviour that depends on the checkpointer, against every backend:
exact resume, interrupts, time travel, one run per session, materialisation."""

from __future__ import annotations

import asyncio
import copy
import operator
import uuid
from collections import Counter, deque
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.engine import END, START, FlowEngine, FlowEngineHooks, RetryPolicy, SessionBusy, interrupt
from flows.engine.errors import NodeError


class Chat(TypedDict, total=False):
    messages: Annotated[list, operator.add]
    route: str
    results: Annotated[list, operator.add]
    answer: Any


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so no retry or handler sees it."""


async def test_crash_between_nodes_resumes_at_next(backend, durable):
    calls: Counter = Counter()
    crash_in_c = True

    def make_flow(checkpointer):
        def node(name):
            def run(state):
                calls[name] += 1
                if name == "c" and crash_in_c:
                    raise Crash()
                return {"messages": [name]}
            return run

        flow = FlowEngine(Chat, checkpointer)
        for name in "abcd":
            flow.add_node(name, node(name))
        flow.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", "d").add_edge("d", END)
        return flow

    first_cp = backend.create()
    session_id = sid()
    with pytest.raises(Crash):
        await make_flow(first_cp).invoke({"messages": ["hi"]}, session_id=session_id)
    head = (await first_cp.aget_metadata(session_id))
    assert head.node == "b" and head.next == ("c",)
    # a new process: a new checkpointer instance on the same storage (the same one for memory)
    crash_in_c = False
    second_cp = backend.create() if durable else first_cp
    result = await make_flow(second_cp).invoke(None, session_id=session_id)
    assert result["messages"] == ["hi", "a", "b", "c", "d"]
    assert calls == {"a": 1, "b": 1, "c": 2, "d": 1}
    for cp in {id(first_cp): first_cp, id(second_cp): second_cp}.values():
        if hasattr(cp, "aclose"):
            await cp.aclose()


async def test_resume_after_a_conditional_node_takes_the_chosen_branch(checkpointer):
    decisions: list[str] = []
    fail_left = [True]

    def choose(state):
        pick = "left" if not decisions else "right"  # would change if asked again
        decisions.append(pick)
        return pick

    def left(state):
        if fail_left[0]:
            fail_left[0] = False
            raise RuntimeError("left is down")
        return {"route": "left"}

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("decide", lambda s: {"messages": ["decided"]})
    flow.add_node("left", left)
    flow.add_node("right", lambda s: {"route": "right"})
    flow.add_edge(START, "decide")
    flow.add_conditional_edges("decide", choose, ["left", "right"])
    flow.add_edge("left", END).add_edge("right", END)
    session_id = sid()
    with pytest.raises(NodeError, match="node 'left' failed on attempt 1/1: RuntimeError: left is down"):
        await flow.invoke({"messages": []}, session_id=session_id)
    assert (await flow.list_checkpoints(session_id, limit=1))[0].next == ("left",)
    result = await flow.invoke(None, session_id=session_id)
    assert result["route"] == "left"
    assert decisions == ["left"]


async def test_fan_out_failure_reruns_only_the_failed_branch(checkpointer):
    calls: Counter = Counter()
    broken = {"b2"}

    def branch(name):
        async def run(state):
            calls[name] += 1
            await asyncio.sleep(0)
            if name in broken:
                raise ValueError(f"{name} broke")
            return {"results": [name]}
        return run

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("split", lambda s: {"messages": ["split"]})
    for name in ("b1", "b2", "b3"):
        flow.add_node(name, branch(name))
    flow.add_node("join", lambda s: {"messages": [f"joined {sorted(s['results'])}"]})
    flow.add_edge(START, "split").add_edge("split", ["b1", "b2", "b3"])
    flow.add_edge(["b1", "b2", "b3"], "join").add_edge("join", END)
    session_id = sid()
    with pytest.raises(NodeError, match="b2"):
        await flow.invoke({"messages": []}, session_id=session_id)
    head = await flow.get_checkpoint(session_id)
    assert head.metadata.next == ("b2",)
    assert sorted(head.state["results"]) == ["b1", "b3"]
    broken.clear()
    result = await flow.invoke(None, session_id=session_id)
    assert calls == {"b1": 1, "b2": 2, "b3": 1}
    assert sorted(result["results"]) == ["b1", "b2", "b3"]
    assert result["messages"][-1] == "joined ['b1', 'b2', 'b3']"


async def test_interrupt_then_resume_delivers_the_answer_after_a_reload(backend, durable):
    asked: list[int] = []

    def make_flow(cp):
        def approve(state):
            asked.append(1)
            answer = interrupt({"question": "refund 20 EUR?"})
            return {"answer": answer, "messages": [f"approved={answer}"]}

        flow = FlowEngine(Chat, cp)
        flow.add_node("prepare", lambda s: {"messages": ["prepared"]})
        flow.add_node("approve", approve)
        flow.add_edge(START, "prepare").add_edge("prepare", "approve").add_edge("approve", END)
        return flow

    cp = backend.create()
    session_id = sid()
    paused = await make_flow(cp).invoke({"messages": ["refund please"]}, session_id=session_id)
    [question] = paused["__interrupt__"]
    assert question["node"] == "approve" and question["value"] == {"question": "refund 20 EUR?"}
    reloaded = backend.create() if durable else cp
    flow = make_flow(reloaded)
    state = await flow.get_state(session_id)
    assert state["__interrupt__"] == [question]
    # new input while the question is pending: merged, the question stays, nothing runs
    waiting = await flow.invoke({"messages": ["hello?"]}, session_id=session_id)
    assert waiting["__interrupt__"] == [question]
    assert waiting["messages"] == ["refund please", "prepared", "hello?"]
    assert len(asked) == 1
    result = await flow.invoke(None, session_id=session_id, resume=True)
    assert "__interrupt__" not in result
    assert result["answer"] is True
    assert result["messages"] == ["refund please", "prepared", "hello?", "approved=True"]
    assert len(asked) == 2
    with pytest.raises(ValueError, match="no pending interrupt"):
        await flow.invoke(None, session_id=session_id, resume=False)
    for instance in {id(cp): cp, id(reloaded): reloaded}.values():
        if hasattr(instance, "aclose"):
            await instance.aclose()


async def test_interrupt_before_and_after(checkpointer):
    ran: list[str] = []
    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("draft", lambda s: ran.append("draft") or {"messages": ["draft"]}, interrupt_after=True)
    flow.add_node("send", lambda s: ran.append("send") or {"messages": ["sent"]}, interrupt_before=True)
    flow.add_edge(START, "draft").add_edge("draft", "send").add_edge("send", END)
    session_id = sid()
    first = await flow.invoke({"messages": []}, session_id=session_id)
    assert first["__interrupt__"][0]["value"] == {"when": "after", "node": "draft"}
    second = await flow.invoke(None, session_id=session_id, resume="ok")
    assert second["__interrupt__"][0]["value"] == {"when": "before", "node": "send"}
    assert ran == ["draft"]
    final = await flow.invoke(None, session_id=session_id, resume="go")
    assert final["messages"] == ["draft", "sent"] and ran == ["draft", "send"]


async def test_fork_from_an_old_checkpoint_keeps_the_original_branch(checkpointer):
    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("echo", lambda s: {"messages": [f"echo {s['messages'][-1]}"]})
    flow.add_edge(START, "echo").add_edge("echo", END)
    session_id = sid()
    await flow.invoke({"messages": ["one"]}, session_id=session_id)
    after_one = (await flow.list_checkpoints(session_id, limit=1))[0]
    await flow.invoke({"messages": ["two"]}, session_id=session_id)
    original_head = (await flow.list_checkpoints(session_id, limit=1))[0]
    forked = await flow.invoke({"messages": ["TWO"]}, session_id=session_id, checkpoint_id=after_one.checkpoint_id)
    assert forked["messages"] == ["one", "echo one", "TWO", "echo TWO"]
    assert (await flow.get_state(session_id))["messages"] == forked["messages"]
    original = await flow.get_state(session_id, original_head.checkpoint_id)
    assert original["messages"] == ["one", "echo one", "two", "echo two"]
    history = await flow.list_checkpoints(session_id, limit=10)
    assert [c.node for c in history] == ["echo", "__start__", "echo", "__start__"]
    assert history[1].parent_id == after_one.checkpoint_id
    assert original_head.checkpoint_id not in {c.checkpoint_id for c in history}
    # the new branch continues as a normal conversation
    more = await flow.invoke({"messages": ["three"]}, session_id=session_id)
    assert more["messages"][-2:] == ["three", "echo three"]


async def test_update_state_runs_no_node(checkpointer):
    calls: Counter = Counter()
    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("a", lambda s: calls.update("a") or {"messages": ["a"]})
    flow.add_node("b", lambda s: calls.update("b") or {"messages": ["b"]})
    flow.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    session_id = sid()
    await flow.invoke({"messages": []}, session_id=session_id)
    meta = await flow.update_state(session_id, {"messages": ["edited"], "route": "x"})
    assert meta.node == "__update__" and meta.next == ()
    assert await flow.get_state(session_id) == {"messages": ["a", "b", "edited"], "route": "x"}
    as_a = await flow.update_state(session_id, {"messages": ["as a"]}, as_node="a")
    assert as_a.next == ("b",)
    result = await flow.invoke(None, session_id=session_id)
    assert result["messages"][-2:] == ["as a", "b"]
    assert calls == {"a": 1, "b": 2}


async def test_concurrent_invokes_each_append_once(checkpointer):
    flow = FlowEngine(Chat, checkpointer)

    async def reply(state):
        await asyncio.sleep(0.001)
        return {"route": f"seen {len(state['messages'])}"}

    flow.add_node("reply", reply)
    flow.add_edge(START, "reply").add_edge("reply", END)
    session_id = sid()
    await asyncio.gather(*(flow.invoke({"messages": [f"m{i}"]}, session_id=session_id) for i in range(8)))
    state = await flow.get_state(session_id)
    assert sorted(state["messages"]) == [f"m{i}" for i in range(8)]


async def test_on_busy_reject(checkpointer):
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(state):
        started.set()
        await release.wait()
        return {"route": "done"}

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("slow", slow)
    flow.add_edge(START, "slow").add_edge("slow", END)
    session_id = sid()
    running = asyncio.create_task(flow.invoke({"messages": ["a"]}, session_id=session_id))
    await started.wait()
    with pytest.raises(SessionBusy, match="busy"):
        await flow.invoke({"messages": ["b"]}, session_id=session_id, on_busy="reject")
    release.set()
    assert (await running)["route"] == "done"
    assert (await flow.get_state(session_id))["messages"] == ["a"]


async def test_retry_records_the_successful_attempt(checkpointer):
    attempts = Counter()

    def flaky(state):
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ConnectionError("try again")
        return {"route": "ok"}

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("flaky", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0))
    flow.add_edge(START, "flaky").add_edge("flaky", END)
    session_id = sid()
    assert (await flow.invoke({}, session_id=session_id))["route"] == "ok"
    head = (await flow.list_checkpoints(session_id, limit=1))[0]
    assert head.attempt == 3 and head.node == "flaky" and head.updated_fields == ("route",)


async def test_in_place_mutation_cannot_corrupt_saved_checkpoints(checkpointer):
    def sneaky(state):
        state["messages"].append("sneaked in")  # mutates the live list
        state["messages"][0] = "overwritten"
        return {"route": "sneaky"}

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("sneaky", sneaky)
    flow.add_edge(START, "sneaky").add_edge("sneaky", END)
    session_id = sid()
    await flow.invoke({"messages": ["original"]}, session_id=session_id)
    history = await flow.list_checkpoints(session_id)
    start = await flow.get_checkpoint(session_id, history[-1].checkpoint_id)
    assert start.state["messages"] == ["original"]


class Recorder(FlowEngineHooks):
    def __init__(self) -> None:
        self.ids: list[str] = []

    def on_checkpoint(self, metadata) -> None:
        self.ids.append(metadata.checkpoint_id)


class Model(TypedDict, total=False):
    items: Annotated[list, operator.add]
    text: Annotated[str, operator.add]
    tags: list
    name: str
    data: dict
    count: int


_scalar = st.one_of(st.integers(-5, 5), st.text(max_size=4), st.booleans(), st.none())
_update = st.fixed_dictionaries(
    {},
    optional={
        "items": st.lists(_scalar, max_size=3),
        "text": st.text(max_size=5),
        "tags": st.lists(st.sampled_from("abc"), max_size=4),
        "name": st.text(max_size=5),
        "data": st.dictionaries(st.text(max_size=3), _scalar, max_size=3),
        "count": st.integers(),
    },
)
_turns = st.lists(st.tuples(_update, _update, _update), min_size=1, max_size=6)


def _reference_merge(state: dict, update: dict) -> None:
    for name, value in update.items():
        if name in ("items", "text") and name in state:
            state[name] = state[name] + value
        else:
            state[name] = value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=_turns)
async def test_every_checkpoint_materialises_to_the_engine_state(checkpointer, turns):
    planned: deque = deque()
    recorder = Recorder()

    def node(state):
        return planned.popleft()

    flow = FlowEngine(Model, checkpointer, hooks=recorder)
    flow.add_node("a", node).add_node("b", node)
    flow.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    session_id = sid()
    model: dict = {}
    expected: list[dict] = []
    for given_input, update_a, update_b in turns:
        planned.extend([copy.deepcopy(update_a), copy.deepcopy(update_b)])
        result = await flow.invoke(copy.deepcopy(given_input), session_id=session_id)
        for update in (given_input, update_a, update_b):
            _reference_merge(model, copy.deepcopy(update))
            expected.append(copy.deepcopy(model))
        assert result == model
    assert len(recorder.ids) == len(expected)
    for checkpoint_id, state in zip(recorder.ids, expected, strict=True):
        assert (await flow.get_state(session_id, checkpoint_id)) == state


async def test_a_long_node_keeps_its_lease_alive(backend):
    checkpointer = backend.create(lease_seconds=0.5)
    try:
        halfway = asyncio.Event()

        async def slow(state):
            await asyncio.sleep(0.7)  # longer than the lease: renewals must keep it
            halfway.set()
            await asyncio.sleep(0.7)
            return {"route": "done"}

        flow = FlowEngine(Chat, checkpointer)
        flow.add_node("slow", slow).add_edge(START, "slow").add_edge("slow", END)
        session_id = sid()
        running = asyncio.create_task(flow.invoke({"messages": ["x"]}, session_id=session_id))
        await halfway.wait()
        with pytest.raises(SessionBusy):
            await flow.invoke({"messages": ["y"]}, session_id=session_id, on_busy="reject")
        assert (await running)["route"] == "done"
    finally:
        if hasattr(checkpointer, "aclose"):
            await checkpointer.aclose()
