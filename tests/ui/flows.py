"""A flow for the browser tests: a chat whose reply fails while a flag file exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, TypedDict

from flows.engine import END, START, FlowEngine
from project.flows.support import add_messages

#: while this file exists, every reply fails
FAIL_FLAG = "FLOWS_TEST_FAIL_FLAG"


class FlakyState(TypedDict, total=False):
    messages: Annotated[list, add_messages]


def flaky_flow(checkpointer=None) -> FlowEngine:
    def reply(state: FlakyState) -> dict:
        flag = os.environ.get(FAIL_FLAG)
        if flag and Path(flag).exists():
            raise ConnectionError("the model did not answer")
        return {"messages": [{"role": "assistant", "content": f"echo: {state['messages'][-1]['content']}"}]}

    flow = FlowEngine(FlakyState, checkpointer=checkpointer)
    flow.add_node("reply", reply)
    flow.add_edge(START, "reply")
    flow.add_edge("reply", END)
    return flow.build()
