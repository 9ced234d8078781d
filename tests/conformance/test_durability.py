"""Durability modes on every backend: what each writes, and that a resume re-runs only what it promises.

``sync`` writes each checkpoint before the next node starts; ``async`` writes it
while the next node runs, everything stored before the call returns or reports a
question; ``exit`` writes once, when the run ends, asks, or fails (and before a
fan-out, so a branch re-run sees the state its superstep began with). A crash
is tested in test_processes.py.
"""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, TypedDict

import pytest

from flows.engine import END, START, FlowEngine, NodeError, interrupt

MODES = ["sync", "async", "exit"]


class Log(TypedDict, total=False):
    log: Annotated[list, operator.add]
    note: str


def sid() -> str:
    return f"d-{uuid.uuid4().hex[:10]}"


def chain(checkpointer, durability: str, calls: list[str], failing: set[str]) -> FlowEngine:
    def node(name: str):
        def run(state):
            calls.append(name)
            if name in failing:
                raise ConnectionError(f"{name} could not reach the model")
            return {"log": [name], "note": f"after {name}"}

        return run

    flow = FlowEngine(Log, checkpointer, durability=durability)
    for name in "abcd":
        flow.add_node(name, node(name))
    return flow.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", "d").add_edge("d", END)


@pytest.mark.parametrize("durability", MODES)
async def test_a_failed_node_leaves_what_finished_before_it_and_a_resume_runs_only_it(checkpointer, durability):
    calls: list[str] = []
    failing = {"c"}
    flow = chain(checkpointer, durability, calls, failing)
    session_id = sid()
    with pytest.raises(NodeError, match="node 'c'"):
        await flow.invoke({"log": ["in"]}, session_id=session_id)
    state = await flow.get_state(session_id)
    assert state == {"log": ["in", "a", "b"], "note": "after b"}
    head = await flow.get_metadata(session_id)
    assert head.next == ("c",) and head.node == "b"
    written = [meta.node for meta in await flow.list_checkpoints(session_id, limit=50)]
    assert written == (["b"] if durability == "exit" else ["b", "a", "__start__"])

    failing.clear()
    assert (await flow.invoke(None, session_id=session_id))["log"] == ["in", "a", "b", "c", "d"]
    assert calls == ["a", "b", "c", "c", "d"]
    history = await flow.list_checkpoints(session_id, limit=50)
    expected = ["d", "b"] if durability == "exit" else ["d", "c", "b", "a", "__start__"]
    assert [meta.node for meta in history] == expected
    assert [meta.parent_id for meta in history[:-1]] == [meta.checkpoint_id for meta in history[1:]]
    for meta in history[:-1] if durability != "exit" else history:  # each reads back as the run had it
        assert (await flow.get_state(session_id, meta.checkpoint_id))["note"] == f"after {meta.node}"


@pytest.mark.parametrize("durability", MODES)
async def test_a_question_is_stored_before_it_is_reported(checkpointer, durability):
    def ask(state):
        return {"note": interrupt("proceed?")}

    flow = FlowEngine(Log, checkpointer, durability=durability)
    flow.add_node("prep", lambda s: {"log": ["prep"]}).add_node("ask", ask)
    flow.add_node("done", lambda s: {"log": ["done"]})
    flow.add_edge(START, "prep").add_edge("prep", "ask").add_edge("ask", "done").add_edge("done", END)
    reader = FlowEngine(Log, checkpointer)  # another handle on the same sessions
    reader.add_node("x", lambda s: {}).add_edge(START, "x").add_edge("x", END)
    session_id = sid()
    seen_when_reported = None
    async for event in flow.stream({"log": ["in"]}, session_id=session_id):
        if event["event"] == "interrupted":
            seen_when_reported = await reader.get_state(session_id)
    assert seen_when_reported is not None
    assert seen_when_reported["log"] == ["in", "prep"]
    assert seen_when_reported["__interrupt__"][0]["value"] == "proceed?"
    result = await flow.invoke(None, session_id=session_id, resume="yes")
    assert result == {"log": ["in", "prep", "done"], "note": "yes"}


@pytest.mark.parametrize("durability", MODES)
async def test_a_fan_out_branch_run_again_sees_the_state_its_superstep_began_with(checkpointer, durability):
    seen: list[list] = []
    failing = {"right"}

    def right(state):
        seen.append(list(state["log"]))
        if failing:
            raise ConnectionError("right could not reach the model")
        return {"log": ["right"]}

    flow = FlowEngine(Log, checkpointer, durability=durability)
    flow.add_node("first", lambda s: {"log": ["first"]})
    flow.add_node("left", lambda s: {"log": ["left"]}).add_node("right", right)
    flow.add_node("join", lambda s: {"log": ["join"]})
    flow.add_edge(START, "first").add_edge("first", ["left", "right"]).add_edge(["left", "right"], "join")
    flow.add_edge("join", END)
    session_id = sid()
    with pytest.raises(NodeError, match="node 'right'"):
        await flow.invoke({"log": ["in"]}, session_id=session_id)
    failing.clear()
    result = await flow.invoke(None, session_id=session_id)
    assert sorted(result["log"]) == sorted(["in", "first", "left", "right", "join"])
    assert seen == [["in", "first"], ["in", "first"]]  # not the left branch's result


@pytest.mark.parametrize("durability", MODES)
async def test_the_mode_can_be_chosen_per_call(checkpointer, durability):
    flow = chain(checkpointer, "sync", [], set())
    session_id = sid()
    await flow.invoke({"log": []}, session_id=session_id, durability=durability)
    count = len(await flow.list_checkpoints(session_id, limit=50))
    assert count == (1 if durability == "exit" else 5)
