"""Regression tests for the engine review's findings: read-cache aliasing,
in-place mutation deltas, interrupt_after pauses, step numbers, retry and Send
inputs, resume inputs, streams of pending questions, fork safety of the sync
bridge, and failing conditions in a fan-out."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest

from flows.engine import END, START, FlowEngine, RetryPolicy, Send, interrupt
from flows.engine.checkpointers import Checkpointer, InMemoryCheckpointer
from flows.engine.errors import NodeError, ReadOnlyValue, RouteError


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    items: list
    seen: Any
    n: int


# ---------------------------------------------------------------- read cache


async def test_mutating_a_returned_state_does_not_change_later_reads():
    cp = InMemoryCheckpointer()
    flow = FlowEngine(S, cp)
    flow.add_node("a", lambda s: {"log": [{"text": "hi", "tags": ["x"]}], "items": [{"n": 1}]})
    flow.add_edge(START, "a").add_edge("a", END)
    await flow.invoke({"log": []}, session_id="s")

    state = await flow.get_state("s")
    state["log"].append("the caller's own list")
    state["items"][0]["n"] = 2  # a replaced field: the caller's own copy
    with pytest.raises(ReadOnlyValue, match=r"read-only.*dict\(item\)"):
        state["log"][0]["text"] = "changed by the caller"  # an appended item: shared, read-only
    with pytest.raises(ReadOnlyValue, match=r"list\(item\)"):
        state["log"][0]["tags"].append("y")
    copied = dict(state["log"][0])
    copied["text"] = "a copy is the caller's"
    again = await flow.get_state("s")
    assert again["log"] == [{"text": "hi", "tags": ["x"]}] and again["items"] == [{"n": 1}]


async def test_node_mutating_an_appended_item_in_place_fails_clearly_and_changes_nothing():
    def mark(state):
        state["log"][0]["seen"] = True  # in place, and not returned: would never be saved
        return {"n": 1}

    cp = InMemoryCheckpointer()
    flow = FlowEngine(S, cp)
    flow.add_node("a", lambda s: {"log": [{"text": "hi"}]})
    flow.add_edge(START, "a").add_edge("a", END)
    await flow.invoke({"log": []}, session_id="s")
    await flow.get_state("s")  # warms the cache

    flow2 = FlowEngine(S, cp)
    flow2.add_node("mark", mark)
    flow2.add_edge(START, "mark").add_edge("mark", END)
    with pytest.raises(NodeError, match=r"node 'mark' failed.*ReadOnlyValue.*read-only") as failure:
        await flow2.invoke(None, session_id="s")
    assert isinstance(failure.value.__cause__, ReadOnlyValue)

    uncached = Checkpointer(cp.store, read_cache_size=0)  # the very same stored data, read without the cache
    stored = (await uncached.aget("s")).state
    assert stored["log"] == [{"text": "hi"}]
    assert (await flow.get_state("s"))["log"] == stored["log"]


async def test_cache_does_not_bypass_fail_closed_loading_of_unregistered_types():
    from dataclasses import dataclass

    from flows.engine.errors import SerializationError

    @dataclass
    class Item:
        x: int

    cp = InMemoryCheckpointer()
    writer = FlowEngine(S, cp, types=[Item])
    writer.add_node("a", lambda s: {"log": [Item(1)]})
    writer.add_edge(START, "a").add_edge("a", END)
    await writer.invoke({"log": []}, session_id="s")
    await writer.get_state("s")

    reader = FlowEngine(S, cp)  # Item not registered: loading must fail closed
    reader.add_node("a", lambda s: {})
    reader.add_edge(START, "a").add_edge("a", END)
    uncached = FlowEngine(S, Checkpointer(cp.store, read_cache_size=0))  # the same stored data, no cache
    uncached.add_node("a", lambda s: {})
    uncached.add_edge(START, "a").add_edge("a", END)
    with pytest.raises(SerializationError):
        await uncached.invoke(None, session_id="s")  # what the contract says
    with pytest.raises(SerializationError):
        await reader.invoke(None, session_id="s")  # served Item objects from the writer's cache


# ------------------------------------------------------- in-place mutation / deltas


async def test_node_that_appends_in_place_and_returns_the_list_is_saved():
    def add(state):
        state["items"].append("b")
        return {"items": state["items"]}

    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("add", add)
    flow.add_edge(START, "add").add_edge("add", END)
    result = await flow.invoke({"items": ["a"]}, session_id="s")
    assert result["items"] == ["a", "b"]
    assert (await flow.get_state("s"))["items"] == ["a", "b"]


def _extend_in_place(old, new):
    old.extend(new)
    return old


class InPlace(TypedDict, total=False):
    log: Annotated[list, _extend_in_place]


async def test_reducer_that_extends_in_place_is_saved():
    flow = FlowEngine(InPlace, InMemoryCheckpointer())
    flow.add_node("a", lambda s: {"log": ["x"]})
    flow.add_edge(START, "a").add_edge("a", END)
    await flow.invoke({"log": ["in"]}, session_id="s")
    assert (await flow.get_state("s"))["log"] == ["in", "x"]


async def test_replacing_a_list_with_equal_but_differently_typed_items_round_trips():
    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("a", lambda s: {"items": [1.0, 2.5]})
    flow.add_edge(START, "a").add_edge("a", END)
    result = await flow.invoke({"items": [1]}, session_id="s")
    stored = (await flow.get_state("s"))["items"]
    assert stored == result["items"] and [type(v) for v in stored] == [float, float]


# ------------------------------------------------------------------ retries


async def test_each_retry_attempt_gets_a_fresh_input():
    seen = []

    def flaky(state):
        state["n"] = state["n"] + 1  # its own input copy
        seen.append(state["n"])
        if len(seen) == 1:
            raise ConnectionError("down")
        return {"n": state["n"]}

    flow = FlowEngine(S)
    flow.add_node("flaky", flaky, retry=RetryPolicy(max_attempts=2, initial_interval=0))
    flow.add_edge(START, "flaky").add_edge("flaky", END)
    result = await flow.invoke({"n": 0})
    assert seen == [1, 1] and result["n"] == 1


# ---------------------------------------------------------------- exact resume


async def test_send_branch_resumes_with_its_original_input():
    def fan(state):
        return [Send("work", {"k": 0})]

    def work(item):
        item["k"] += 1
        interrupt("ok?")
        return {"log": [item["k"]]}

    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("start", lambda s: {})
    flow.add_node("work", work)
    flow.add_edge(START, "start")
    flow.add_conditional_edges("start", fan, ["work"])
    flow.add_edge("work", END)
    paused = await flow.invoke({"log": []}, session_id="s")
    assert "__interrupt__" in paused
    result = await flow.invoke(None, session_id="s", resume="yes")
    assert result["log"] == [1]


async def test_resumed_branch_sees_the_state_its_superstep_began_with():
    def fast(state):
        return {"log": ["fast"]}

    def asks(state):
        seen = list(state["log"])
        interrupt("ok?")
        return {"seen": seen}

    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("fast", fast).add_node("asks", asks)
    flow.add_edge(START, ["fast", "asks"]).add_edge(["fast", "asks"], END)
    await flow.invoke({"log": []}, session_id="s")
    result = await flow.invoke(None, session_id="s", resume="yes")
    # in an uninterrupted superstep "asks" would have seen [] (docs: "they all
    # receive the state as it was when the superstep began")
    assert result["seen"] == []


# ---------------------------------------------------------------- interrupts


async def test_interrupt_after_is_kept_when_a_sibling_asks_a_question():
    def asks(state):
        return {"seen": interrupt("q")}

    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("review", lambda s: {"log": ["review"]}, interrupt_after=True)
    flow.add_node("asks", asks)
    flow.add_node("after_review", lambda s: {"log": ["after_review"]})
    flow.add_edge(START, ["review", "asks"])
    flow.add_edge("review", "after_review").add_edge("after_review", END).add_edge("asks", END)

    first = await flow.invoke({"log": []}, session_id="s")
    assert [q["node"] for q in first["__interrupt__"]] == ["asks"]
    second = await flow.invoke(None, session_id="s", resume="yes")
    # "review" asked to pause after it: that pause must still happen before after_review runs
    assert "__interrupt__" in second and "after_review" not in second["log"]


async def test_interrupt_after_is_kept_when_a_sibling_fails():
    calls = {"n": 0}

    async def flaky(state):
        calls["n"] += 1
        await asyncio.sleep(0.01)
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return {}

    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("review", lambda s: {"log": ["review"]}, interrupt_after=True)
    flow.add_node("flaky", flaky)
    flow.add_node("after_review", lambda s: {"log": ["after_review"]})
    flow.add_edge(START, ["review", "flaky"])
    flow.add_edge("review", "after_review").add_edge("after_review", END).add_edge("flaky", END)
    with pytest.raises(NodeError, match="node 'flaky' failed"):
        await flow.invoke({"log": []}, session_id="s")
    result = await flow.invoke(None, session_id="s")
    assert "__interrupt__" in result and "after_review" not in result["log"]


async def test_stream_reports_a_still_pending_question():
    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("ask", lambda s: {"seen": interrupt("q")})
    flow.add_edge(START, "ask").add_edge("ask", END)
    await flow.invoke({"log": []}, session_id="s")
    events = [e async for e in flow.stream({"log": ["more"]}, session_id="s")]
    assert any(e["event"] == "interrupted" for e in events), events


# ---------------------------------------------------------------- metadata


async def test_checkpoint_step_is_the_superstep_the_node_ran_in():
    flow = FlowEngine(S, InMemoryCheckpointer())
    for name in "abc":
        flow.add_node(name, lambda s, name=name: {"log": [name]})
    flow.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    steps: dict[str, list[int]] = {}

    async def collect():
        async for event in flow.stream({"log": []}, session_id="s"):
            if event["event"] in ("node_started", "node_finished"):
                steps.setdefault(event["node"], []).append(event["step"])

    await collect()
    history = {m.node: m.step for m in await flow.list_checkpoints("s")}
    assert history == {"__start__": 0, "a": 1, "b": 2, "c": 3}
    assert all(len(set(v)) == 1 for v in steps.values()), steps


# ---------------------------------------------------------------- sync bridge


def _child_uses_sync_bridge(conn) -> None:
    from flows.engine import run_sync

    try:
        conn.send(run_sync(asyncio.sleep(0, "ok")))
    except BaseException as exc:  # noqa: BLE001  # pragma: no cover - the child reports whatever it got to the parent
        conn.send(repr(exc))


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # forking is the point
def test_sync_bridge_works_in_a_forked_child():
    import multiprocessing

    from flows.engine import run_sync

    assert run_sync(asyncio.sleep(0, "parent")) == "parent"  # the loop thread now exists
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child_uses_sync_bridge, args=(child,))
    proc.start()
    try:
        assert parent.poll(5), "run_sync hung in the forked child (e.g. a gunicorn --preload worker)"
        assert parent.recv() == "ok"
    finally:
        proc.kill()
        proc.join()


# ---------------------------------------------------------------- fan-out failures


async def test_a_failing_condition_lets_sibling_branches_finish_and_checkpoint():
    async def slow(state):
        await asyncio.sleep(0.02)
        return {"log": ["slow"]}

    def broken(state):
        raise KeyError("oops")

    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("fast", lambda s: {"log": ["fast"]}).add_node("slow", slow)
    flow.add_edge(START, ["fast", "slow"]).add_edge("slow", END)
    flow.add_conditional_edges("fast", broken, [END])
    with pytest.raises(RouteError, match="the condition after node 'fast' failed"):
        await flow.invoke({"log": []}, session_id="s")
    # docs: "In a fan-out, the other branches finish and are checkpointed before the error is raised"
    assert "slow" in [m.node for m in await flow.list_checkpoints("s")]
