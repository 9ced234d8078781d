"""The runner is handed a compiled flow and one request; invoke and stream take one set of arguments."""

from __future__ import annotations

import dataclasses
import inspect
import operator
from typing import Annotated, TypedDict

import pytest

from flows.engine import END, START, FlowEngine, FlowEngineHooks
from flows.engine.checkpointers import InMemoryCheckpointer
from flows.engine.compiled import CompiledFlow
from flows.engine.flow import Call


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]


def _flow() -> FlowEngine:
    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("a", lambda s: {"log": ["a"]}).add_edge(START, "a").add_edge("a", END)
    return flow


def test_invoke_and_stream_take_the_arguments_of_call():
    invoke, stream = inspect.signature(FlowEngine.invoke), inspect.signature(FlowEngine.stream)
    assert list(invoke.parameters) == list(stream.parameters) == ["self", *inspect.signature(Call).parameters]
    assert inspect.iscoroutinefunction(FlowEngine.invoke)


async def test_a_wrong_argument_is_a_type_error_as_for_any_function():
    flow = _flow()
    with pytest.raises(TypeError, match="on_bussy"):
        await flow.invoke({"log": []}, "s", on_bussy="reject")
    with pytest.raises(TypeError):
        flow.stream({"log": []}, "s", "positional-max-steps")
    events = [event["event"] async for event in flow.stream({"log": []}, session_id="s", run_id="r1")]
    assert events[0] == "run_started" and events[-1] == "run_finished"


async def test_the_compiled_flow_is_frozen_and_follows_hooks_added_later():
    flow = _flow()
    compiled = flow.compiled()
    assert isinstance(compiled, CompiledFlow) and compiled.checkpointer is flow.checkpointer
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled.checkpointer = None
    await flow.invoke({"log": []}, session_id="s")
    seen: list[str] = []

    class Hooks(FlowEngineHooks):
        def on_checkpoint(self, metadata) -> None:
            seen.append(metadata.node)

    flow.add_hooks(Hooks())
    assert flow.compiled() is not compiled and compiled.on_checkpoint == ()
    await flow.invoke({"log": ["again"]}, session_id="s")
    assert seen == ["__start__", "a"]


async def test_update_state_as_a_node_routes_on_from_it():
    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("a", lambda s: {"log": ["a"]}).add_node("b", lambda s: {"log": ["b"]})
    flow.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    meta = await flow.update_state("s", {"log": ["by hand"]}, as_node="a")
    assert meta.next == ("b",)
    assert (await flow.invoke(None, session_id="s"))["log"] == ["by hand", "b"]
