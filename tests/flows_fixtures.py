"""Small flows shared by the engine and conformance tests."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from flows.engine import END, START, FlowEngine


class AppState(TypedDict):
    """The seed page's state: ``messages`` appends, the others replace."""

    messages: Annotated[list, operator.add]
    status: str
    counter: int


def seed_flow(checkpointer=None) -> FlowEngine:
    """The seed page's flow shape: one node counting the turns."""

    def count(state: AppState) -> dict:
        return {"counter": state.get("counter", 0) + 1}

    flow = FlowEngine(state_schema=AppState, checkpointer=checkpointer)
    flow.add_node("count", count)
    flow.add_edge(START, "count")
    flow.add_edge("count", END)
    return flow.build()
