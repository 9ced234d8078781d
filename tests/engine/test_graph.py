"""Graph building and validation: clear errors before anything runs."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

from flows.engine import END, START, FlowEngine, GraphValidationError, RetryPolicy


class S(TypedDict, total=False):
    x: int
    log: Annotated[list, operator.add]


def noop(state):
    return {}


def flow() -> FlowEngine:
    return FlowEngine(S)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda f: f.add_edge(START, "a"), "unknown node 'a'"),
        (lambda f: f.add_node("a", noop).add_edge("a", END), "no edge from START"),
        (lambda f: f.add_node("a", noop).add_edge(START, "a"), "node 'a' has no outgoing edge"),
        (lambda f: f.add_node("a", noop).add_node("b", noop).add_edge(START, "a").add_edge("a", END).add_edge("b", END),
         "not reachable from START: ['b']"),
        (lambda f: f.add_node("a", noop).add_edge(START, "a").add_conditional_edges("a", lambda s: "z", ["z"]),
         "unknown nodes ['z']"),
        (lambda f: f, "the graph has no nodes"),
    ],
)
def test_build_names_the_problem(build, message):
    with pytest.raises(GraphValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build(flow()).build()


def test_node_definition_errors():
    f = flow().add_node("a", noop)
    with pytest.raises(GraphValidationError, match="already defined"):
        f.add_node("a", noop)
    with pytest.raises(GraphValidationError, match="reserved"):
        f.add_node(END, noop)
    with pytest.raises(GraphValidationError, match="not callable"):
        f.add_node("b", 42)
    with pytest.raises(GraphValidationError, match="stream=True"):
        f.add_node("gen", lambda s: (yield s))
    with pytest.raises(GraphValidationError, match="must be a generator"):
        f.add_node("plain", noop, stream=True)
    with pytest.raises(GraphValidationError, match="RetryPolicy"):
        f.add_node("r", noop, retry=3)
    with pytest.raises(GraphValidationError, match="duplicate edge"):
        f.add_edge(START, "a").add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="lead to START"):
        f.add_edge("a", START)


def test_reducer_arity_is_checked():
    class Bad(TypedDict):
        x: Annotated[list, lambda old: old]

    with pytest.raises(GraphValidationError, match="reducer of state field 'x' must take two arguments"):
        FlowEngine(Bad)


def test_a_built_flow_is_frozen():
    f = flow().add_node("a", noop).add_edge(START, "a").add_edge("a", END).build()
    with pytest.raises(GraphValidationError, match="already built"):
        f.add_node("b", noop)


def test_joins_exclude_start_and_loop_backs():
    f = flow()
    for name in ("agent", "tools", "left", "right", "merge"):
        f.add_node(name, noop)
    f.add_edge(START, "agent")
    f.add_conditional_edges("agent", lambda s: END, ["tools", "left", END])
    f.add_edge("tools", "agent")
    f.add_edge("left", ["merge", "right"]).add_edge("right", "merge").add_edge("merge", END)
    f.build()
    assert f._graph.joins == {"merge": frozenset({"left", "right"})}


def test_details_and_mermaid_describe_the_graph():
    f = flow()
    f.add_node("ask", noop, retry=RetryPolicy(max_attempts=2), timeout=5, interrupt_before=True)
    f.add_node("done", noop)
    f.add_edge(START, "ask")
    f.add_conditional_edges("ask", lambda s: "yes", {"yes": "done", "no": END})
    f.add_edge("done", END).build()
    details = f.details()
    assert "ask (sync, retry x2, timeout 5s, interrupt before)" in details
    assert "__start__ -> ask" in details and "ask -> <lambda>() -> {'yes': 'done', 'no': '__end__'}" in details
    mermaid = f.to_mermaid()
    assert mermaid.startswith("flowchart TD")
    assert '__start__ --> n_ask' in mermaid and 'n_ask -. "yes" .-> n_done' in mermaid
    assert "http" not in mermaid
