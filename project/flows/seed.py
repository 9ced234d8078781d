"""The seed page's ``AppState`` flow: messages append, status and counter replace.

Each turn counts itself and acknowledges the newest message, so a session shows
the checkpointer continuing where it stopped::

    manage.py flows_invoke seed user-123 --input '{"messages": [], "status": "start", "counter": 0}'
    manage.py flows_invoke seed user-123 --input '{"messages": ["new input"], "status": "continuing"}'
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from flows.engine import END, START, FlowEngine
from flows.engine.checkpointers import BaseCheckpointer


class AppState(TypedDict):
    messages: Annotated[list[str], operator.add]
    status: str
    counter: int


def count_turn(state: AppState) -> dict:
    return {"counter": state.get("counter", 0) + 1}


def acknowledge(state: AppState) -> dict:
    messages = state.get("messages") or []
    if not messages or str(messages[-1]).startswith("ack:"):
        return {}
    return {"messages": [f"ack: {messages[-1]} (turn {state['counter']})"]}


def build_seed_flow(checkpointer: BaseCheckpointer | None = None) -> FlowEngine:
    flow = FlowEngine(state_schema=AppState, checkpointer=checkpointer)
    flow.add_node("count", count_turn)
    flow.add_node("acknowledge", acknowledge)
    flow.add_edge(START, "count")
    flow.add_edge("count", "acknowledge")
    flow.add_edge("acknowledge", END)
    return flow.build()
