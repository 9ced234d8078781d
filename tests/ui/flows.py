"""Flows for the browser tests: a chat whose reply fails while a flag file exists, and one that goes on after
its streamed reply."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from flows.engine import END, START, FlowEngine
from project.flows.support import add_messages

#: while this file exists, every reply fails
FAIL_FLAG = "FLOWS_TEST_FAIL_FLAG"
#: while this file exists, the ``tail`` flow's second node waits (at most 20 s)
HOLD_FLAG = "FLOWS_TEST_HOLD_FLAG"


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


class TailState(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    filed: bool


def tail_flow(checkpointer=None) -> FlowEngine:
    """Streams a reply word by word, then spends a moment filing it: the run goes on after the reply is stored."""

    async def reply(state: TailState) -> AsyncIterator[Any]:
        words = f"you said: {state['messages'][-1]['content']}".split()
        for word in words:
            await asyncio.sleep(0.03)
            yield word + " "
        yield {"messages": [{"role": "assistant", "content": " ".join(words) + " "}]}

    async def file_it(state: TailState) -> dict:
        flag = os.environ.get(HOLD_FLAG)
        deadline = asyncio.get_running_loop().time() + 20
        while flag and Path(flag).exists() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)  # the test lets go by removing the file
        return {"filed": True}

    flow = FlowEngine(TailState, checkpointer=checkpointer)
    flow.add_node("reply", reply, stream=True)
    flow.add_node("file_it", file_it)
    flow.add_edge(START, "reply")
    flow.add_edge("reply", "file_it")
    flow.add_edge("file_it", END)
    return flow.build()
