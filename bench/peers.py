"""The same logical graphs built on flows and on each peer, behind one interface.

Three graph shapes (:class:`Graph`), all over a state with an appending
``messages`` list (the README's reducer, ``Annotated[list, operator.add]``):

* ``chain(n)`` — START → n0 → … → n(n-1) → END, every node bumps a replaced
  ``counter`` (pure engine and checkpoint cost: each step changes one small field);
* ``CHAT`` — START → reply → END, the node appends one ~200-byte reply: with
  the ~200-byte user message of each invoke, a turn grows ``messages`` by two;
* ``ROUTED`` — START → classify → (conditional edge) → respond → END, a chat
  turn as a router-style app runs it: ``classify`` reads the last message and
  sets a replaced ``intent``, the condition routes on it, ``respond`` appends a
  reply of the same shape as the user's message.

Messages come in two shapes (:data:`SHAPES`): ``str`` (a ~200-byte text) and
``dict`` (chat-shaped, ``{"role": "user" | "assistant", "content": <~200-byte
text>}``, as the demo's messages are). Every system takes both: flows and
llmfy store dicts as JSON, LangGraph with msgpack.

:func:`build` wires a graph onto one system and returns a :class:`Flow`, whose
``invoke`` / ``head`` / ``history`` use each system's public API:

========== ============================ ======================== =================================
system     invoke                       head                     history (latest k)
========== ============================ ======================== =================================
flows      ``FlowEngine.invoke``        ``get_state``            ``list_checkpoints`` (metadata)
llmfy      ``FlowEngine.invoke``        ``get_state``            ``list_checkpoints`` (with state)
langgraph  ``ainvoke`` / ``invoke``     ``aget_state``           ``aget_state_history`` (with state)
========== ============================ ======================== =================================

Conditional edges: flows and llmfy ``add_conditional_edges(source, condition,
{key: target})``, LangGraph ``StateGraph.add_conditional_edges`` (the same
call). LangGraph savers without async methods (``SqliteSaver``,
``PostgresSaver``) are driven through the sync API (``invoke``,
``get_state``): that is how they are meant to be used.
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


class ChatState(TypedDict):
    messages: Annotated[list, operator.add]  # the README's reducer: updates are appended
    intent: str  # replaced


def message(i: int, role: str = "user") -> str:
    """A ~200-byte message, different for each ``i`` and not very compressible."""
    digest = "".join(hashlib.sha256(f"{role}{i}/{k}".encode()).hexdigest() for k in range(3))
    return f"{role} {i}: {digest}"[:200]


def chat_message(i: int, role: str = "user") -> dict[str, str]:
    """A chat-shaped message: ``{"role": ..., "content": <the ~200-byte text of message()>}``."""
    return {"role": role, "content": message(i, role)}


#: message shape -> factory of the i-th message (``role`` "user" or "assistant")
SHAPES: dict[str, Callable[..., Any]] = {"dict": chat_message, "str": message}

_REPLIES = [message(i, "assistant") for i in range(4096)]


def bump(state: State) -> dict:
    return {"counter": state.get("counter", 0) + 1}


def reply(state: State) -> dict:
    return {"messages": [_REPLIES[len(state.get("messages") or ()) % len(_REPLIES)]]}


def _text(item: Any) -> str:
    return item["content"] if isinstance(item, dict) else item


def classify(state: ChatState) -> dict:
    """Reads the last message (a node of a router-style chat app) and sets ``intent``."""
    messages = state.get("messages") or ()
    last = _text(messages[-1]) if messages else ""
    return {"intent": "billing" if last[-1:] in ("0", "1", "2", "3") else "general"}


def route(state: ChatState) -> str:
    return "respond" if state.get("intent") else "done"


def respond(state: ChatState) -> dict:
    """Appends a ~200-byte reply of the same shape as the user's message (a new object each time)."""
    messages = state.get("messages") or ()
    text = _REPLIES[len(messages) % len(_REPLIES)]
    if messages and isinstance(messages[-1], dict):
        return {"messages": [{"role": "assistant", "content": text}]}
    return {"messages": [text]}


Nodes = list[tuple[str, Callable[[Any], dict]]]


@dataclass(frozen=True)
class Graph:
    """A graph, independent of the system: ``"START"`` / ``"END"`` stand for each system's constants."""

    state: type
    nodes: Nodes
    edges: tuple[tuple[str, str], ...]
    #: conditional edges: (source, condition(state) -> key, {key: target})
    branches: tuple[tuple[str, Callable[[Any], str], dict[str, str]], ...] = ()


def linear(nodes: Nodes, state: type = State) -> Graph:
    names = ["START", *(name for name, _ in nodes), "END"]
    return Graph(state, nodes, tuple(pairwise(names)))


def chain(n: int) -> Graph:
    return linear([(f"n{i}", bump) for i in range(n)])


CHAT = linear([("reply", reply)])

ROUTED = Graph(
    ChatState,
    [("classify", classify), ("respond", respond)],
    (("START", "classify"), ("respond", "END")),
    (("classify", route, {"respond": "respond", "done": "END"}),),
)


@dataclass
class Flow:
    """One graph on one system (and one checkpointer, or none)."""

    invoke: Callable[[dict[str, Any], str | None], Awaitable[Any]]
    head: Callable[[str], Awaitable[Any]]
    history: Callable[[str, int], Awaitable[list]]


def build(system: str, graph: Graph, checkpointer: Any = None, *, sync: bool = False) -> Flow:
    """``graph`` on ``system``; ``sync`` drives a sync-only LangGraph saver."""
    limit = len(graph.nodes) + 10
    if system == "flows":
        from flows.engine import END, START, FlowEngine

        engine = FlowEngine(graph.state, checkpointer, max_steps=limit)
        return _seed_style(engine, graph, {"START": START, "END": END})
    if system == "llmfy":
        from llmfy.flow_engine import END, START, FlowEngine

        engine = FlowEngine(graph.state, checkpointer=checkpointer, max_steps=limit)
        return _seed_style(engine, graph, {"START": START, "END": END})
    if system == "langgraph":
        return _langgraph(graph, checkpointer, sync, limit)
    raise ValueError(f"unknown system {system!r}")


def _wire(target: Any, graph: Graph, names: dict[str, Any]) -> None:
    """add_node / add_edge / add_conditional_edges: the same calls on all three systems."""
    for name, fn in graph.nodes:
        target.add_node(name, fn)
    for a, b in graph.edges:
        target.add_edge(names.get(a, a), names.get(b, b))
    for source, condition, targets in graph.branches:
        target.add_conditional_edges(source, condition, {k: names.get(v, v) for k, v in targets.items()})


def _seed_style(flow: Any, graph: Graph, names: dict[str, Any]) -> Flow:
    """flows and llmfy share the seed's API: add_node / add_edge / build / invoke."""
    _wire(flow, graph, names)
    flow.build()

    async def invoke(data: dict[str, Any], session_id: str | None) -> Any:
        return await flow.invoke(data, session_id=session_id)

    async def head(session_id: str) -> Any:
        return await flow.get_state(session_id)

    async def history(session_id: str, k: int) -> list:
        return await flow.list_checkpoints(session_id, limit=k)

    return Flow(invoke, head, history)


def _langgraph(graph: Graph, checkpointer: Any, sync: bool, limit: int) -> Flow:
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(graph.state)
    _wire(builder, graph, {"START": START, "END": END})
    app = builder.compile(checkpointer=checkpointer)

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
