"""The same logical graphs built on flows and on each peer, behind one interface.

Each builder returns an async ``run(input, session_id)`` for a linear chain of
``nodes`` nodes that each bump a counter, over a state with an appending
``messages`` list: the shape of a conversation turn.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Awaitable, Callable, TypedDict

Runner = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]


class State(TypedDict):
    messages: Annotated[list, operator.add]
    counter: int


def bump(state: State) -> dict:
    return {"counter": state.get("counter", 0) + 1}


def flows_runner(nodes: int, checkpointer: Any = None) -> Runner:
    from flows.engine import END, START, FlowEngine

    flow = FlowEngine(State, checkpointer, max_steps=nodes + 10)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        flow.add_node(name, bump)
    flow.add_edge(START, names[0])
    for a, b in zip(names, names[1:]):
        flow.add_edge(a, b)
    flow.add_edge(names[-1], END)
    flow.build()

    async def run(data: dict[str, Any], session_id: str | None) -> dict[str, Any]:
        return await flow.invoke(data, session_id=session_id)

    return run


def llmfy_runner(nodes: int, checkpointer: Any = None) -> Runner:
    from llmfy.flow_engine import END, START, FlowEngine

    flow = FlowEngine(State, checkpointer=checkpointer, max_steps=nodes + 10)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        flow.add_node(name, bump)
    flow.add_edge(START, names[0])
    for a, b in zip(names, names[1:]):
        flow.add_edge(a, b)
    flow.add_edge(names[-1], END)
    flow.build()

    async def run(data: dict[str, Any], session_id: str | None) -> dict[str, Any]:
        return await flow.invoke(data, session_id=session_id)

    return run


def langgraph_runner(nodes: int, checkpointer: Any = None) -> Runner:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(State)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        graph.add_node(name, bump)
    graph.add_edge(START, names[0])
    for a, b in zip(names, names[1:]):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    app = graph.compile(checkpointer=checkpointer)

    async def run(data: dict[str, Any], session_id: str | None) -> dict[str, Any]:
        config = {"configurable": {"thread_id": session_id}, "recursion_limit": nodes + 10}
        return await app.ainvoke(data, config=config if session_id else {"recursion_limit": nodes + 10})

    return run


def memory_checkpointers() -> dict[str, Callable[[], Any]]:
    """A fresh in-memory checkpointer per system."""

    def flows_memory():
        from flows.engine.checkpointers import InMemoryCheckpointer

        return InMemoryCheckpointer()

    def llmfy_memory():
        from llmfy.flow_engine import InMemoryCheckpointer

        return InMemoryCheckpointer()

    def langgraph_memory():
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()

    return {"flows": flows_memory, "llmfy": llmfy_memory, "langgraph": langgraph_memory}


RUNNERS = {"flows": flows_runner, "llmfy": llmfy_runner, "langgraph": langgraph_runner}
