"""The same logical graphs built on flows and on each peer, behind one interface.

Two graph shapes, both over a state with an appending ``messages`` list and a
replaced ``counter``:

* ``chain(n)`` — START → n0 → … → n(n-1) → END, every node bumps ``counter``
  (pure engine and checkpoint cost: each step changes one small field);
* ``CHAT`` — START → reply → END, the node appends one ~200-byte reply: with
  the ~200-byte user message of each invoke, a turn grows ``messages`` by two.

:func:`build` wires a graph onto one system and returns a :class:`Flow`, whose
``invoke`` / ``head`` / ``history`` use each system's public API:

========== ============================ ======================== =================================
system     invoke                       head                     history (latest k)
========== ============================ ======================== =================================
flows      ``FlowEngine.invoke``        ``get_state``            ``list_checkpoints`` (metadata)
llmfy      ``FlowEngine.invoke``        ``get_state``            ``list_checkpoints`` (with state)
langgraph  ``ainvoke`` / ``invoke``     ``aget_state``           ``aget_state_history`` (with state)
========== ============================ ======================== =================================

LangGraph savers without async methods (``SqliteSaver``, ``PostgresSaver``)
are driven through the sync API (``invoke``, ``get_state``): that is how they
are meant to be used.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Any, TypedDict

SYSTEMS = ("flows", "llmfy", "langgraph")


class State(TypedDict):
    messages: Annotated[list, operator.add]
    counter: int


def message(i: int, role: str = "user") -> str:
    """A ~200-byte message, different for each ``i`` and not very compressible."""
    digest = "".join(hashlib.sha256(f"{role}{i}/{k}".encode()).hexdigest() for k in range(3))
    return f"{role} {i}: {digest}"[:200]


_REPLIES = [message(i, "assistant") for i in range(4096)]


def bump(state: State) -> dict:
    return {"counter": state.get("counter", 0) + 1}


def reply(state: State) -> dict:
    return {"messages": [_REPLIES[len(state.get("messages") or ()) % len(_REPLIES)]]}


Nodes = list[tuple[str, Callable[[State], dict]]]


def chain(n: int) -> Nodes:
    return [(f"n{i}", bump) for i in range(n)]


CHAT: Nodes = [("reply", reply)]


@dataclass
class Flow:
    """One graph on one system (and one checkpointer, or none)."""

    invoke: Callable[[dict[str, Any], str | None], Awaitable[Any]]
    head: Callable[[str], Awaitable[Any]]
    history: Callable[[str, int], Awaitable[list]]


def build(system: str, nodes: Nodes, checkpointer: Any = None, *, sync: bool = False) -> Flow:
    """``nodes`` as a linear graph on ``system``; ``sync`` drives a sync-only LangGraph saver."""
    if system == "flows":
        from flows.engine import END, START, FlowEngine

        return _seed_style(
            FlowEngine(State, checkpointer, max_steps=len(nodes) + 10),
            nodes,
            START,
            END,
        )
    if system == "llmfy":
        from llmfy.flow_engine import END, START, FlowEngine

        engine = FlowEngine(State, checkpointer=checkpointer, max_steps=len(nodes) + 10)
        return _seed_style(engine, nodes, START, END)
    if system == "langgraph":
        return _langgraph(nodes, checkpointer, sync)
    raise ValueError(f"unknown system {system!r}")


def _seed_style(flow: Any, nodes: Nodes, start: str, end: str) -> Flow:
    """flows and llmfy share the seed's API: add_node / add_edge / build / invoke."""
    names = [name for name, _ in nodes]
    for name, fn in nodes:
        flow.add_node(name, fn)
    flow.add_edge(start, names[0])
    for a, b in pairwise(names):
        flow.add_edge(a, b)
    flow.add_edge(names[-1], end)
    flow.build()

    async def invoke(data: dict[str, Any], session_id: str | None) -> Any:
        return await flow.invoke(data, session_id=session_id)

    async def head(session_id: str) -> Any:
        return await flow.get_state(session_id)

    async def history(session_id: str, k: int) -> list:
        return await flow.list_checkpoints(session_id, limit=k)

    return Flow(invoke, head, history)


def _langgraph(nodes: Nodes, checkpointer: Any, sync: bool) -> Flow:
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(State)
    names = [name for name, _ in nodes]
    for name, fn in nodes:
        graph.add_node(name, fn)
    graph.add_edge(START, names[0])
    for a, b in pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    app = graph.compile(checkpointer=checkpointer)
    limit = len(nodes) + 10

    def config(session_id: str | None) -> dict:
        if session_id is None:
            return {"recursion_limit": limit}
        return {"configurable": {"thread_id": session_id}, "recursion_limit": limit}

    if sync:

        async def invoke(data: dict[str, Any], session_id: str | None) -> Any:
            return app.invoke(data, config=config(session_id))

        async def head(session_id: str) -> Any:
            return app.get_state(config(session_id)).values

        async def history(session_id: str, k: int) -> list:
            return list(app.get_state_history(config(session_id), limit=k))

    else:

        async def invoke(data: dict[str, Any], session_id: str | None) -> Any:
            return await app.ainvoke(data, config=config(session_id))

        async def head(session_id: str) -> Any:
            return (await app.aget_state(config(session_id))).values

        async def history(session_id: str, k: int) -> list:
            return [snapshot async for snapshot in app.aget_state_history(config(session_id), limit=k)]

    return Flow(invoke, head, history)
