"""Flows and look-alikes the Django tests register in ``settings.FLOWS``."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from flows.engine import END, START, FlowEngine, interrupt
from tests.flows_fixtures import AppState, seed_flow

#: A module-level engine built without a checkpointer: the registry attaches one.
prebuilt = seed_flow()

NOT_A_FLOW = 42


def returns_a_string() -> str:
    return "not an engine"


def invalid_graph() -> FlowEngine:
    flow = FlowEngine(state_schema=AppState)
    flow.add_node("lonely", lambda state: {})
    return flow  # no edge from START: build() fails


class ApprovalState(TypedDict):
    messages: Annotated[list, operator.add]
    approved: bool


def approval_flow(checkpointer=None) -> FlowEngine:
    """Asks a human before finishing: the session stops at an interrupt."""

    def draft(state: ApprovalState) -> dict:
        return {"messages": ["draft ready"]}

    def approve(state: ApprovalState) -> dict:
        answer = interrupt({"question": "approve the refund?"})
        return {"approved": bool(answer), "messages": [f"approved: {answer}"]}

    flow = FlowEngine(state_schema=ApprovalState, checkpointer=checkpointer)
    flow.add_node("draft", draft)
    flow.add_node("approve", approve)
    flow.add_edge(START, "draft")
    flow.add_edge("draft", "approve")
    flow.add_edge("approve", END)
    return flow.build()


def signalled_flow(checkpointer=None, hooks=None) -> FlowEngine:
    """Takes ``hooks``: the registry passes the signal hooks."""

    def count(state: AppState) -> dict:
        if state.get("status") == "fail":
            raise RuntimeError("asked to fail")
        return {"counter": state.get("counter", 0) + 1}

    flow = FlowEngine(state_schema=AppState, checkpointer=checkpointer, hooks=hooks)
    flow.add_node("count", count)
    flow.add_edge(START, "count")
    flow.add_edge("count", END)
    return flow.build()
