"""Chunks: a long history's extends are folded into chunks, and every checkpoint still reads exactly.

A flow of dict messages (an appending list), a growing transcript (an
appending string) and a replaced field runs past several compaction windows;
then every checkpoint is read back — by the writer, whose read cache saw the
history grow, and by a reader that never saw it — next to what the run
returned at each step.
"""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, TypedDict

from flows.engine import END, START, FlowEngine
from flows.engine.checkpointers import delta
from flows.engine.checkpointers.types import EXTEND

TURNS = 50  # 3 checkpoints a turn: 150 seqs, past two windows of 64


class Chat(TypedDict, total=False):
    messages: Annotated[list, operator.add]
    transcript: Annotated[str, operator.add]
    route: str


def _flow(checkpointer) -> FlowEngine:
    def classify(state):
        return {"route": "long" if len(state["messages"]) % 3 else "short"}

    def respond(state):
        text = f"reply {len(state['messages'])}: " + "x" * (len(state["messages"]) % 7)
        return {"messages": [{"role": "assistant", "content": text, "tags": ["a", {"n": 1}]}], "transcript": text}

    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("classify", classify).add_node("respond", respond)
    flow.add_edge(START, "classify")
    flow.add_conditional_edges("classify", lambda s: s["route"], {"long": "respond", "short": "respond"})
    flow.add_edge("respond", END)
    return flow


def _message(turn: int) -> dict:
    return {"role": "user", "content": f"question {turn} " + "é\"\\" * (turn % 4)}


async def _converse(flow: FlowEngine, session_id: str, turns: int = TURNS) -> dict[str, dict]:
    """Runs the turns; returns every checkpoint's state as the run saw it, by id."""
    seen: dict[str, dict] = {}
    for turn in range(turns):
        await flow.invoke({"messages": [_message(turn)], "transcript": f"Q{turn} "}, session_id=session_id)
        for meta in await flow.list_checkpoints(session_id, limit=4):
            if meta.checkpoint_id not in seen:
                state = await flow.get_state(session_id, meta.checkpoint_id)
                assert state is not None
                seen[meta.checkpoint_id] = state
    return seen


def _other_reader(backend, checkpointer, durable: bool):
    """A checkpointer that never read the session: a second one on the same store, or no cache."""
    if durable:
        return backend.create()
    checkpointer._read_cache = None
    return checkpointer


async def test_every_checkpoint_reads_exactly_after_compaction(backend, checkpointer, durable):
    writer = _flow(checkpointer)
    session_id = f"chunks-{uuid.uuid4().hex[:8]}"
    expected = await _converse(writer, session_id)
    head = await writer.get_metadata(session_id)
    assert head.seq > 2 * delta.SPAN
    stats = await checkpointer.aget_stats()
    assert stats["writes"] < head.seq, stats  # runs of extends became chunks (each checkpoint wrote 1-3)

    # the writer's cache saw the history grow, and the windows compacted under it
    for checkpoint_id, state in expected.items():
        assert await writer.get_state(session_id, checkpoint_id) == state, checkpoint_id
    other = _other_reader(backend, checkpointer, durable)
    try:
        reader = _flow(other)
        for checkpoint_id, state in reversed(list(expected.items())):
            assert await reader.get_state(session_id, checkpoint_id) == state, checkpoint_id
        # and the conversation goes on from there
        await reader.invoke({"messages": [_message(TURNS)]}, session_id=session_id)
        assert len((await writer.get_state(session_id))["messages"]) == 2 * TURNS + 2
    finally:
        if other is not checkpointer and hasattr(other, "aclose"):
            await other.aclose()


async def test_a_reader_cached_inside_a_window_reads_on_exactly_once_it_is_compacted(checkpointer):
    flow = _flow(checkpointer)
    session_id = f"chunks-{uuid.uuid4().hex[:8]}"
    await _converse(flow, session_id, turns=10)  # seq 30: inside the first window
    cached = await flow.get_state(session_id)
    expected = await _converse(flow, session_id, turns=40)  # past seq 128: two windows compacted
    head = await flow.get_metadata(session_id)
    assert head.seq > 2 * delta.SPAN and len(cached["messages"]) == 20
    assert await flow.get_state(session_id) == expected[head.checkpoint_id]


async def test_each_checkpoints_own_writes_read_back_from_chunks(checkpointer):
    flow = _flow(checkpointer)
    session_id = f"chunks-{uuid.uuid4().hex[:8]}"
    expected = await _converse(flow, session_id)
    metas = {meta.seq: meta for meta in await flow.list_checkpoints(session_id, limit=1000)}
    by_id = {meta.checkpoint_id: meta for meta in metas.values()}
    written = await checkpointer.aread_writes(session_id, Chat.__annotations__, 1, max(metas), flow.serializer)
    for seq, meta in metas.items():
        if meta.parent_id is None or meta.parent_id not in by_id:
            continue
        before, after = expected[meta.parent_id], expected[meta.checkpoint_id]
        checkpoint = await flow.get_checkpoint(session_id, meta.checkpoint_id)
        for name, op, value in written.get(seq, []):
            assert name in meta.updated_fields
            if op == EXTEND:
                assert before[name] + value == after[name]
            else:
                assert value == after[name]
            assert checkpoint.changes[name] == (op, value)
        assert {name for name, _, _ in written.get(seq, [])} == set(meta.updated_fields), seq


async def test_pruning_and_undo_keep_compacted_checkpoints_exact(checkpointer):
    flow = _flow(checkpointer)
    session_id = f"chunks-{uuid.uuid4().hex[:8]}"
    expected = await _converse(flow, session_id)
    newest_first = await flow.list_checkpoints(session_id, limit=1000)
    # undo back into the first compacted window: the head moves to the parent
    target = next(meta for meta in reversed(newest_first) if meta.seq == delta.SPAN // 2)
    await checkpointer.adelete(session_id, target.checkpoint_id)
    assert await flow.get_state(session_id) == expected[target.parent_id]
    survivors = await flow.list_checkpoints(session_id, limit=1000)
    for meta in survivors:
        assert await flow.get_state(session_id, meta.checkpoint_id) == expected[meta.checkpoint_id]
    # the conversation goes on from the undone point, then history is pruned to its newest 20
    more = await _converse(flow, session_id, turns=30)
    await checkpointer.aprune(session_id, keep=20)
    kept = await flow.list_checkpoints(session_id, limit=1000)
    assert len(kept) == 20
    for meta in kept:
        assert await flow.get_state(session_id, meta.checkpoint_id) == more[meta.checkpoint_id]
