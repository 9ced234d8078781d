"""Flows the API tests register: one per behaviour the routes must show."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import operator
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

from flows.engine import END, START, FlowEngine

#: What a ``slow`` streaming run waits for (a test sets it; new for every test).
GATE = asyncio.Event()


class ChatState(TypedDict, total=False):
    messages: Annotated[list, operator.add]
    turns: int
    when: dt.datetime | None
    fail: bool
    slow: bool
    label: str


def chat_flow(checkpointer=None) -> FlowEngine:
    """Answers every message; fails on demand (``fail: true``)."""

    def reply(state: ChatState) -> dict:
        if state.get("fail"):
            raise RuntimeError("asked to fail")
        last = state["messages"][-1] if state.get("messages") else None
        return {"messages": [f"echo: {last}"], "turns": state.get("turns", 0) + 1}

    flow = FlowEngine(ChatState, checkpointer=checkpointer)
    flow.add_node("reply", reply)
    flow.add_edge(START, "reply")
    flow.add_edge("reply", END)
    return flow.build()


def streaming_flow(checkpointer=None) -> FlowEngine:
    """Streams its reply word by word (``slow: true``: waits for ``GATE`` after the first)."""

    async def speak(state: ChatState) -> AsyncIterator[Any]:
        words = ["one ", "two ", "three"]
        for word in words:
            await asyncio.sleep(0)
            yield word
            if state.get("slow"):
                await GATE.wait()
        yield {"messages": ["".join(words)]}

    flow = FlowEngine(ChatState, checkpointer=checkpointer)
    flow.add_node("speak", speak, stream=True)
    flow.add_edge(START, "speak")
    flow.add_edge("speak", END)
    return flow.build()


def broken_factory(checkpointer=None) -> FlowEngine:
    """A site's bug: the factory itself raises."""
    raise RuntimeError("the factory is broken")


def sleepy_flow(checkpointer=None) -> FlowEngine:
    """A node that waits 300 ms, as a model call would: runs that overlap show in the clock."""

    async def think(state: ChatState) -> dict:
        await asyncio.sleep(0.3)
        return {"turns": state.get("turns", 0) + 1}

    flow = FlowEngine(ChatState, checkpointer=checkpointer)
    flow.add_node("think", think)
    flow.add_edge(START, "think")
    flow.add_edge("think", END)
    return flow.build()


def sloppy_flow(checkpointer=None) -> FlowEngine:
    """A node that writes what its own schema refuses (a site's bug, not the caller's input)."""

    def write(state: ChatState) -> dict:
        return {"messages": "not a list"}

    flow = FlowEngine(ChatState, checkpointer=checkpointer)
    flow.add_node("write", write)
    flow.add_edge(START, "write")
    flow.add_edge("write", END)
    return flow.build()


def steps_flow(checkpointer=None) -> FlowEngine:
    """Four nodes, one after another, each taking ``FLOWS_TEST_STEP_SECONDS`` and streaming a token.

    Each node writes its name to ``$FLOWS_TEST_COUNT_DIR/<session>.log`` when it
    finishes its work, so a test can count how often each node ran.
    """

    def step(name: str):
        async def run(state: ChatState) -> AsyncIterator[Any]:
            yield f"{name} "
            await asyncio.sleep(float(os.environ.get("FLOWS_TEST_STEP_SECONDS", "0.5")))
            counts = os.environ.get("FLOWS_TEST_COUNT_DIR")
            if counts:
                with open(os.path.join(counts, f"{state.get('label', 'run')}.log"), "a") as log:
                    log.write(name + "\n")
            yield {"messages": [name]}

        return run

    flow = FlowEngine(ChatState, checkpointer=checkpointer)
    names = ["a", "b", "c", "d"]
    for name in names:
        flow.add_node(name, step(name), stream=True)
    flow.add_edge(START, names[0])
    for first, second in itertools.pairwise(names):
        flow.add_edge(first, second)
    flow.add_edge(names[-1], END)
    return flow.build()
