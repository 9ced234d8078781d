"""Run semantics without persistence: routing, fan-out, Send, joins, streaming,
retries, timeouts, hooks and limits."""

from __future__ import annotations

import asyncio
import json
import operator
import time
from typing import Annotated, Any, NotRequired, TypedDict

import pytest
from annotated_types import Gt

from flows.engine import (
    END,
    START,
    FlowEngine,
    FlowEngineHooks,
    InvalidInput,
    InvalidSessionId,
    MaxStepsExceeded,
    NodeError,
    RetryPolicy,
    RouteError,
    Send,
    append,
    interrupt,
)
from flows.engine.checkpointers import InMemoryCheckpointer
from flows.engine.errors import SerializationError


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    text: Annotated[str, operator.add]
    n: int
    item: Any


def logger(name):
    def run(state):
        return {"log": [name]}
    return run


async def test_sync_and_async_nodes_and_conditional_dict_targets():
    async def decide(state):
        return {"n": 2}

    f = FlowEngine(S)
    f.add_node("decide", decide).add_node("even", logger("even")).add_node("odd", logger("odd"))
    f.add_edge(START, "decide")
    f.add_conditional_edges("decide", lambda s: "e" if s["n"] % 2 == 0 else "o", {"e": "even", "o": "odd"})
    f.add_edge("even", END).add_edge("odd", END)
    assert await f.invoke({"log": []}) == {"log": ["even"], "n": 2}


async def test_condition_returning_an_unknown_key_is_a_clear_error():
    f = FlowEngine(S)
    f.add_node("a", logger("a"))
    f.add_edge(START, "a")
    f.add_conditional_edges("a", lambda s: "nope", {"yes": END})
    with pytest.raises(InvalidInput, match=r"returned 'nope'; expected one of \['yes'\]"):
        await f.invoke({})


async def test_fan_out_and_join_wait_for_all_branches():
    order: list[str] = []

    def branch(name, delay):
        async def run(state):
            await asyncio.sleep(delay)
            order.append(name)
            return {"log": [name]}
        return run

    f = FlowEngine(S)
    f.add_node("fast", branch("fast", 0)).add_node("slow", branch("slow", 0.01))
    f.add_node("slow2", branch("slow2", 0)).add_node("join", lambda s: {"n": len(s["log"])})
    f.add_edge(START, ["fast", "slow"]).add_edge("slow", "slow2")
    f.add_edge(["fast", "slow2"], "join").add_edge("join", END)
    result = await f.invoke({"log": []})
    assert result["n"] == 3 and order == ["fast", "slow", "slow2"]


async def test_send_fans_out_over_runtime_items():
    def plan(state):
        return {"log": ["plan"]}

    def work(item):
        return {"log": [f"did {item['item']}"]}

    f = FlowEngine(S)
    f.add_node("plan", plan).add_node("work", work).add_node("sum", lambda s: {"n": len(s["log"])})
    f.add_edge(START, "plan")
    f.add_conditional_edges("plan", lambda s: [Send("work", {"item": i}) for i in range(3)], ["work"])
    f.add_edge("work", "sum").add_edge("sum", END)
    result = await f.invoke({"log": []})
    assert sorted(result["log"]) == ["did 0", "did 1", "did 2", "plan"]
    assert result["n"] == 4


async def test_loops_until_a_condition_ends():
    f = FlowEngine(S)
    f.add_node("inc", lambda s: {"n": s.get("n", 0) + 1})
    f.add_edge(START, "inc")
    f.add_conditional_edges("inc", lambda s: END if s["n"] >= 5 else "inc", ["inc", END])
    assert (await f.invoke({"n": 0}))["n"] == 5


async def test_max_steps_is_a_clear_error_naming_the_node():
    f = FlowEngine(S, max_steps=3)
    f.add_node("spin", lambda s: {"n": s.get("n", 0) + 1})
    f.add_edge(START, "spin").add_conditional_edges("spin", lambda s: "spin", ["spin"])
    with pytest.raises(MaxStepsExceeded, match=r"max_steps=3 .* before node 'spin'"):
        await f.invoke({})
    with pytest.raises(MaxStepsExceeded, match="max_steps=5"):
        await f.invoke({}, max_steps=5)
    # a bound below one step is refused, not taken for the default
    for bad in (0, -1):
        with pytest.raises(InvalidInput, match=f"max_steps must be at least 1, not {bad}"):
            await f.invoke({}, max_steps=bad)


async def test_a_question_that_cannot_be_stored_is_a_serialization_error():
    """NaN in an interrupt() value fails as NaN in state does, not as a raw ValueError."""
    f = FlowEngine(S, checkpointer=InMemoryCheckpointer())
    f.add_node("ask", lambda s: {"n": interrupt({"score": float("nan")})})
    f.add_edge(START, "ask").add_edge("ask", END)
    with pytest.raises(SerializationError, match="pending question's value"):
        await f.invoke({}, session_id="nan")


async def test_retry_with_backoff_then_final_failure_names_node_and_attempt():
    calls = []

    def broken(state):
        calls.append(time.monotonic())
        raise ConnectionError("down")

    f = FlowEngine(S)
    f.add_node("call", broken, retry=RetryPolicy(max_attempts=3, initial_interval=0.01, backoff_factor=2))
    f.add_edge(START, "call").add_edge("call", END)
    with pytest.raises(NodeError, match=r"node 'call' failed on attempt 3/3: ConnectionError: down") as info:
        await f.invoke({})
    assert isinstance(info.value.__cause__, ConnectionError)
    assert len(calls) == 3
    assert calls[2] - calls[1] >= calls[1] - calls[0] >= 0.01


async def test_retry_on_filters_exceptions():
    calls = []

    def broken(state):
        calls.append(1)
        raise KeyError("missing")

    f = FlowEngine(S)
    f.add_node("call", broken, retry=RetryPolicy(max_attempts=5, initial_interval=0, retry_on=ConnectionError))
    f.add_edge(START, "call").add_edge("call", END)
    with pytest.raises(NodeError, match="attempt 1/5"):
        await f.invoke({})
    assert calls == [1]


async def test_timeout_per_attempt_for_async_and_sync_nodes():
    async def slow(state):
        await asyncio.sleep(5)

    def slow_sync(state):
        time.sleep(0.3)
        return {}

    for func in (slow, slow_sync):
        f = FlowEngine(S)
        f.add_node("slow", func, timeout=0.05, retry=RetryPolicy(max_attempts=2, initial_interval=0))
        f.add_edge(START, "slow").add_edge("slow", END)
        started = time.monotonic()
        with pytest.raises(NodeError, match=r"attempt 2/2: NodeTimeout: node 'slow' timed out after 0.05s"):
            await f.invoke({})
        assert time.monotonic() - started < 2


async def test_stream_yields_chunks_live_and_the_event_vocabulary():
    gate = asyncio.Event()

    async def speak(state):
        for token in ("Hel", "lo"):
            yield token
        await gate.wait()
        yield {"text": "Hello"}

    f = FlowEngine(S, InMemoryCheckpointer())
    f.add_node("speak", speak, stream=True)
    f.add_edge(START, "speak").add_edge("speak", END)
    events = []
    async for event in f.stream({"log": ["hi"]}, session_id="stream-1"):
        events.append(event)
        if event["event"] == "chunk" and event["chunk"] == "lo":
            assert not gate.is_set()  # the chunk arrived while the node still ran
            gate.set()
    kinds = [e["event"] for e in events]
    assert kinds == ["run_started", "node_started", "chunk", "chunk", "node_finished", "run_finished"]
    finished = events[4]
    assert finished["node"] == "speak" and finished["updates"] == {"text": "Hello"} and finished["checkpoint_id"]
    assert events[-1]["state"] == {"log": ["hi"], "text": "Hello"}
    assert all(e["session_id"] == "stream-1" and e["run_id"] == events[0]["run_id"] for e in events)
    json.dumps(events)  # JSON-serialisable as is


async def test_a_chunk_carries_the_step_of_the_checkpoint_its_node_writes():
    """A page holding a streamed reply knows from a state's run and step whether the reply is in it."""

    async def speak(state):
        yield f"turn {state.get('n', 0)}"
        yield {"n": state.get("n", 0) + 1, "log": [f"said {state.get('n', 0)}"]}

    f = FlowEngine(S, InMemoryCheckpointer())
    f.add_node("speak", speak, stream=True)
    f.add_edge(START, "speak")
    f.add_conditional_edges("speak", lambda state: "speak" if state["n"] < 2 else END)
    events = [event async for event in f.stream({"log": []}, session_id="steps")]
    chunks = [e for e in events if e["event"] == "chunk"]
    finished = {e["task_id"]: e for e in events if e["event"] == "node_finished"}
    assert len(chunks) == 2 and chunks[0]["step"] != chunks[1]["step"]
    for chunk in chunks:
        written = await f.get_checkpoint("steps", finished[chunk["task_id"]]["checkpoint_id"])
        assert written.metadata.step == chunk["step"] and written.metadata.run_id == chunk["run_id"]


async def test_sync_generator_stream_node():
    def speak(state):
        yield "a"
        yield "b"
        yield {"text": "ab"}

    f = FlowEngine(S)
    f.add_node("speak", speak, stream=True)
    f.add_edge(START, "speak").add_edge("speak", END)
    chunks = [e["chunk"] async for e in f.stream({}) if e["event"] == "chunk"]
    assert chunks == ["a", "b"]


async def test_stream_reports_failure_then_raises():
    def broken(state):
        raise ValueError("bad")

    f = FlowEngine(S)
    f.add_node("broken", broken).add_edge(START, "broken").add_edge("broken", END)
    events = []
    with pytest.raises(NodeError):  # noqa: PT012 - the events streamed before the error are what is checked
        async for event in f.stream({}):
            events.append(event)
    assert events[-1]["event"] == "run_failed"
    assert events[-1]["error"] == {"type": "NodeError", "node": "broken",
                                   "message": "node 'broken' failed on attempt 1/1: ValueError: bad"}


async def test_hooks_sync_and_async_receive_events_and_checkpoints():
    seen: list[str] = []

    class Hooks(FlowEngineHooks):
        def on_node_finished(self, event):
            seen.append(f"finished {event['node']}")

        async def on_run_finished(self, event):
            seen.append("run finished")

        def on_checkpoint(self, metadata):
            seen.append(f"checkpoint {metadata.node}")

    f = FlowEngine(S, InMemoryCheckpointer(), hooks=Hooks())
    f.add_node("a", logger("a")).add_edge(START, "a").add_edge("a", END)
    await f.invoke({}, session_id="hooks")
    assert seen == ["checkpoint __start__", "checkpoint a", "finished a", "run finished"]


async def test_unknown_fields_and_bad_returns_are_clear_errors():
    f = FlowEngine(S)
    f.add_node("a", lambda s: {"nope": 1}).add_edge(START, "a").add_edge("a", END)
    with pytest.raises(NodeError, match="node 'a' wrote unknown state field 'nope'") as failed:
        await f.invoke({})
    assert isinstance(failed.value.__cause__, InvalidInput)  # the node's mistake, not the caller's
    with pytest.raises(InvalidInput, match="the input wrote unknown state field 'zzz'"):
        await f.invoke({"zzz": 1})
    g = FlowEngine(S)
    g.add_node("a", lambda s: [1]).add_edge(START, "a").add_edge("a", END)
    with pytest.raises(NodeError, match="returned list"):
        await g.invoke({})


async def test_bad_session_id_fails_before_anything_runs():
    ran = []
    f = FlowEngine(S, InMemoryCheckpointer())
    f.add_node("a", lambda s: ran.append(1) or {}).add_edge(START, "a").add_edge("a", END)
    with pytest.raises(InvalidSessionId, match="invalid session id 'no spaces'"):
        await f.invoke({}, session_id="no spaces")
    assert ran == []


async def test_append_reducer_accepts_items():
    class Msgs(TypedDict):
        messages: Annotated[list, append]

    f = FlowEngine(Msgs, InMemoryCheckpointer())
    f.add_node("reply", lambda s: {"messages": "pong"}).add_edge(START, "reply").add_edge("reply", END)
    assert await f.invoke({"messages": "ping"}, session_id="a") == {"messages": ["ping", "pong"]}
    head = await f.get_checkpoint("a")
    assert head.changes["messages"].op == "extend" and head.changes["messages"].value == ["pong"]


async def test_dict_schema_accepts_any_keys():
    f = FlowEngine(dict)
    f.add_node("a", lambda s: {"anything": s["x"] + 1}).add_edge(START, "a").add_edge("a", END)
    assert await f.invoke({"x": 1}) == {"x": 1, "anything": 2}


async def test_a_session_waiting_on_a_node_the_flow_lacks_is_a_clear_error():
    from flows.engine import interrupt

    checkpointer = InMemoryCheckpointer()
    old = FlowEngine(S, checkpointer)
    old.add_node("ask", lambda s: {"item": interrupt("?")}).add_edge(START, "ask").add_edge("ask", END)
    await old.invoke({}, session_id="changed")
    new = FlowEngine(S, checkpointer)
    new.add_node("other", logger("other")).add_edge(START, "other").add_edge("other", END)
    with pytest.raises(InvalidInput, match=r"waiting to run \['ask'\], which this flow does not have"):
        await new.invoke(None, session_id="changed", resume=1)


async def test_several_hooks_can_be_added_after_construction():
    seen: list[str] = []

    class One(FlowEngineHooks):
        def on_node_finished(self, event):
            seen.append(f"one {event['node']}")

    class Two(FlowEngineHooks):
        async def on_node_finished(self, event):
            seen.append(f"two {event['node']}")

    f = FlowEngine(S, hooks=One())
    f.add_node("a", logger("a")).add_edge(START, "a").add_edge("a", END)
    f.add_hooks(Two())
    await f.invoke({})
    assert seen == ["one a", "two a"]
    assert [type(h).__name__ for h in f.hooks] == ["One", "Two"]
    with pytest.raises(TypeError):
        f.add_hooks(object())


def add_messages(old: list, new):
    items = new if isinstance(new, list) else [new]
    return old + [m if isinstance(m, dict) else {"role": "user", "content": m} for m in items]


class Msgs(TypedDict):
    messages: Annotated[list, add_messages]
    best: Annotated[int, max]


async def test_a_reducer_also_shapes_the_first_value():
    f = FlowEngine(Msgs)
    f.add_node("a", lambda s: {"messages": "again", "best": -9}).add_edge(START, "a").add_edge("a", END)
    result = await f.invoke({"messages": "hello", "best": -5})
    assert result["messages"] == [{"role": "user", "content": "hello"}, {"role": "user", "content": "again"}]
    assert result["best"] == -5  # no empty value for int: the first value is taken as is


class Wrapped(TypedDict):
    count: NotRequired[int]
    log: NotRequired[Annotated[list, operator.add]]
    positive: NotRequired[Annotated[int, Gt(0)]]


async def test_input_is_checked_by_the_annotation_whatever_wraps_it():
    f = FlowEngine(Wrapped, InMemoryCheckpointer())
    f.add_node("a", lambda s: {"log": ["a"]}).add_edge(START, "a").add_edge("a", END)
    for bad, field in (({"count": "x"}, "count"), ({"positive": -5}, "positive"), ({"log": 3}, "log")):
        with pytest.raises(InvalidInput) as refused:
            await f.invoke(bad, session_id="w")
        assert list(refused.value.fields) == [field]
    assert await f.invoke({"log": ["in"], "positive": 2}, session_id="w") == {"log": ["in", "a"], "positive": 2}


async def test_a_failing_condition_after_start_is_a_route_error():
    f = FlowEngine(S, InMemoryCheckpointer())
    f.add_node("a", lambda s: {}).add_conditional_edges(START, lambda s: 1 / 0, ["a"]).add_edge("a", END)
    with pytest.raises(RouteError, match="after node '__start__' failed: ZeroDivisionError"):
        await f.invoke({}, session_id="r")


def test_merging_into_the_runs_own_lists_gives_the_same_state_and_writes():
    from flows.engine.state import StateSchema

    class Chat(TypedDict):
        messages: Annotated[list, operator.add]
        note: str

    schema = StateSchema(Chat)
    for update in ({"messages": ["c"], "note": "x"}, {"messages": []}, {"messages": ["d", "e"]}):
        copied, owned = {"messages": ["a", "b"], "note": "n"}, {"messages": ["a", "b"], "note": "n"}
        before = owned["messages"]
        assert schema.merge(owned, update, "t", True, own=True) == schema.merge(copied, update, "t", True)
        assert owned == copied and owned["messages"] is before  # appended in place
    empty: dict = {"messages": []}
    schema.merge(empty, {"messages": ["x"]}, "t", True, own=True)
    assert empty == {"messages": ["x"]}
