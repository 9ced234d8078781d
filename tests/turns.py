"""Writing checkpoints straight through a checkpointer, without an engine."""

from __future__ import annotations

from flows.engine.checkpointers.types import EXTEND, SET, Change


async def put_turns(cp, session_id: str, turns: int, text: str = "m", *, start=None, lease=None) -> list:
    """Writes ``turns`` checkpoints, each appending one message ``<text><n>``
    and setting ``turn``; continues from ``start`` (a fork when it is not the
    newest checkpoint). Returns their metadata, oldest first."""
    metas = []
    parent = start
    state = dict(await cp.amaterialise(parent)) if parent else {}

    async def write(held) -> None:
        nonlocal parent, state
        for i in range(turns):
            old = state.get("messages")
            message = f"{text}{len(old or [])}"
            state = {**state, "messages": (old or []) + [message], "turn": i}
            changes = {
                "messages": Change(EXTEND, [message]) if old else Change(SET, state["messages"]),
                "turn": Change(SET, i),
            }
            parent = await cp.aput(held, parent=parent, state=state, changes=changes,
                                   run_id="r", node=f"n{i}", step=i + 1)
            metas.append(parent)

    if lease is None:
        async with cp.alock(session_id) as held:
            await write(held)
    else:
        await write(lease)
    return metas
