"""The checkpointer contract at the storage level, run against every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest

from flows.engine.checkpointers.types import EXTEND, SET, Change
from flows.engine.errors import (
    CheckpointNotFound,
    InvalidSessionId,
    LeaseLost,
    SessionBusy,
    StateTooLarge,
)
from flows.engine.serde import JsonSerializer
from tests.turns import put_turns


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


async def test_unknown_session_reads_as_empty(checkpointer):
    session_id = sid()
    assert await checkpointer.aget(session_id) is None
    assert await checkpointer.aget_metadata(session_id) is None
    assert await checkpointer.alist(session_id) == []


async def test_put_then_get_materialises_every_checkpoint(checkpointer):
    session_id = sid()
    metas = await put_turns(checkpointer, session_id, 5)
    head = await checkpointer.aget(session_id)
    assert head.metadata.checkpoint_id == metas[-1].checkpoint_id
    assert head.state == {"messages": ["m0", "m1", "m2", "m3", "m4"], "turn": 4}
    for i, meta in enumerate(metas):
        old = await checkpointer.aget(session_id, meta.checkpoint_id)
        assert old.state == {"messages": [f"m{j}" for j in range(i + 1)], "turn": i}


async def test_changes_are_the_step_writes_only(checkpointer):
    session_id = sid()
    metas = await put_turns(checkpointer, session_id, 3)
    last = await checkpointer.aget(session_id, metas[-1].checkpoint_id)
    assert last.changes == {"messages": Change(EXTEND, ["m2"]), "turn": Change(SET, 2)}
    assert last.metadata.updated_fields == ("messages", "turn")


async def test_metadata_round_trips(checkpointer):
    session_id = sid()
    async with checkpointer.alock(session_id) as lease:
        meta = await checkpointer.aput(
            lease,
            parent=None,
            state={"x": 1},
            changes={"x": Change(SET, 1)},
            run_id="r1",
            node="ask",
            step=3,
            next=("ask",),
            interrupt=({"id": "i1", "node": "ask", "value": {"question": "ok?"}},),
            schedule={"step": 3, "current": [{"node": "ask", "id": "t1"}]},
            attempt=2,
            dispatch_id="t1",
        )
    loaded = await checkpointer.aget_metadata(session_id)
    assert loaded == meta
    assert loaded.next == ("ask",)
    assert loaded.interrupt[0]["value"] == {"question": "ok?"}
    assert loaded.attempt == 2 and loaded.dispatch_id == "t1" and loaded.step == 3
    assert loaded.created_at.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - loaded.created_at).total_seconds()) < 60


async def test_list_is_newest_first_with_limit_and_cursor(checkpointer):
    session_id = sid()
    metas = await put_turns(checkpointer, session_id, 7)
    ids = [m.checkpoint_id for m in reversed(metas)]
    listed = await checkpointer.alist(session_id, limit=5)
    assert [m.checkpoint_id for m in listed] == ids[:5]
    page = await checkpointer.alist(session_id, limit=5, before=listed[-1].checkpoint_id)
    assert [m.checkpoint_id for m in page] == ids[5:]
    with pytest.raises(CheckpointNotFound):
        await checkpointer.alist(session_id, before="nope")


async def test_fork_writes_a_branch_and_history_follows_it(checkpointer):
    session_id = sid()
    metas = await put_turns(checkpointer, session_id, 4)
    fork_point = metas[1]
    branch = await put_turns(checkpointer, session_id, 2, start=fork_point)
    head = await checkpointer.aget(session_id)
    assert head.metadata.checkpoint_id == branch[-1].checkpoint_id
    assert head.state["messages"] == ["m0", "m1", "m2", "m3"]
    listed = [m.checkpoint_id for m in await checkpointer.alist(session_id, limit=10)]
    assert listed == [branch[1].checkpoint_id, branch[0].checkpoint_id, metas[1].checkpoint_id, metas[0].checkpoint_id]
    # the original branch is intact
    original = await checkpointer.aget(session_id, metas[3].checkpoint_id)
    assert original.state == {"messages": ["m0", "m1", "m2", "m3"], "turn": 3}
    assert (await checkpointer.aget(session_id, branch[0].checkpoint_id)).state["messages"] == ["m0", "m1", "m2"]


async def test_delete_session_and_one_checkpoint(checkpointer):
    session_id = sid()
    metas = await put_turns(checkpointer, session_id, 4)
    deleted = await checkpointer.adelete(session_id, metas[2].checkpoint_id)
    assert deleted == 2
    head = await checkpointer.aget(session_id)
    assert head.metadata.checkpoint_id == metas[1].checkpoint_id
    assert head.state["messages"] == ["m0", "m1"]
    with pytest.raises(CheckpointNotFound):
        await checkpointer.aget(session_id, metas[3].checkpoint_id)
    # writing after an undo forks cleanly from the new head
    more = await put_turns(checkpointer, session_id, 1, start=head.metadata)
    assert (await checkpointer.aget(session_id)).state["messages"] == ["m0", "m1", "m2"]
    assert more[0].parent_id == metas[1].checkpoint_id
    assert await checkpointer.adelete(session_id) == 3
    assert await checkpointer.aget(session_id) is None


async def test_prune_keeps_head_and_kept_materialisations(checkpointer):
    session_id = sid()
    metas = await put_turns(checkpointer, session_id, 12)
    before = {m.checkpoint_id: (await checkpointer.aget(session_id, m.checkpoint_id)).state for m in metas[-5:]}
    deleted = await checkpointer.aprune(session_id, keep=5)
    assert deleted == 7
    listed = await checkpointer.alist(session_id, limit=50)
    assert [m.checkpoint_id for m in listed] == [m.checkpoint_id for m in reversed(metas[-5:])]
    for checkpoint_id, state in before.items():
        assert (await checkpointer.aget(session_id, checkpoint_id)).state == state
    with pytest.raises(CheckpointNotFound):
        await checkpointer.aget(session_id, metas[0].checkpoint_id)
    stats = await checkpointer.aget_stats()
    assert stats["checkpoints"] == 5
    # superseded "turn" writes went; the message writes the kept ones build on stayed
    assert stats["writes"] < 24


async def test_prune_drops_other_branches_and_keeps_pending_interrupt(checkpointer):
    session_id = sid()
    metas = await put_turns(checkpointer, session_id, 6)
    await put_turns(checkpointer, session_id, 3, start=metas[2])
    async with checkpointer.alock(session_id) as lease:
        head = await checkpointer.aget_metadata(session_id)
        state = await checkpointer.amaterialise(head)
        pending = await checkpointer.aput(
            lease, parent=head, state=state, changes={}, run_id="r", node="ask", step=9,
            next=("ask",), interrupt=({"id": "q", "node": "ask", "value": "approve?"},),
        )
    await checkpointer.aprune(session_id, keep=2)
    kept = await checkpointer.alist(session_id, limit=10)
    assert len(kept) == 2
    head = await checkpointer.aget(session_id)
    assert head.metadata.checkpoint_id == pending.checkpoint_id
    assert head.metadata.interrupt[0]["value"] == "approve?"
    assert head.state == state
    assert (await checkpointer.aget_stats())["checkpoints"] == 2


async def test_prune_older_than_keeps_young_and_head(checkpointer):
    session_id = sid()
    await put_turns(checkpointer, session_id, 3)
    assert await checkpointer.aprune(session_id, older_than=3600) == 0
    assert await checkpointer.aprune(session_id, older_than=0) == 2
    assert len(await checkpointer.alist(session_id)) == 1


async def test_max_checkpoints_per_session_bounds_history(backend):
    checkpointer = backend.create(max_checkpoints_per_session=4)
    try:
        session_id = sid()
        await put_turns(checkpointer, session_id, 20)
        assert len(await checkpointer.alist(session_id, limit=100)) == 4
        stats = await checkpointer.aget_stats()
        assert stats["checkpoints"] <= 4 + 1  # compaction runs every ceil(4/4) = 1 checkpoints
        assert (await checkpointer.aget(session_id)).state["messages"] == [f"m{i}" for i in range(20)]
    finally:
        if hasattr(checkpointer, "aclose"):
            await checkpointer.aclose()


async def test_reject_when_busy_and_wait_queues(checkpointer):
    session_id = sid()
    lease = await checkpointer.aacquire(session_id)
    with pytest.raises(SessionBusy):
        await checkpointer.aacquire(session_id, on_busy="reject")
    with pytest.raises(SessionBusy):
        await checkpointer.aacquire(session_id, timeout=0.05)
    waiter = asyncio.create_task(checkpointer.aacquire(session_id, timeout=10))
    await asyncio.sleep(0)
    assert not waiter.done()
    await checkpointer.arelease(lease)
    second = await waiter
    assert second.token > lease.token
    await checkpointer.arelease(second)


async def test_expired_lease_is_taken_over_and_stale_writer_is_fenced(backend):
    checkpointer = backend.create(lease_seconds=0.2)
    try:
        session_id = sid()
        stale = await checkpointer.aacquire(session_id)
        checkpointer.lease_seconds = 30  # the next lease outlives the test, however slow the machine
        taken = await checkpointer.aacquire(session_id, timeout=5)  # waits for expiry
        assert taken.token > stale.token
        with pytest.raises(LeaseLost):
            await checkpointer.aput(stale, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)},
                                    run_id="r", node="n", step=1)
        assert await checkpointer.aget(session_id) is None  # nothing partial
        await checkpointer.aput(taken, parent=None, state={"x": 2}, changes={"x": Change(SET, 2)},
                                run_id="r", node="n", step=1)
        await checkpointer.arelease(stale)  # a stale release does not free the new holder
        with pytest.raises(SessionBusy):
            await checkpointer.aacquire(session_id, on_busy="reject")
        await checkpointer.arelease(taken)
        assert (await checkpointer.aget(session_id)).state == {"x": 2}
    finally:
        if hasattr(checkpointer, "aclose"):
            await checkpointer.aclose()


async def test_rich_values_round_trip(checkpointer):
    session_id = sid()
    value = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "at": dt.time(12, 30),
        "id": uuid.UUID(int=7),
        "price": Decimal("10.10"),
        "raw": b"\x00\xff",
        "pair": (1, (2, "x")),
        "nested": {1: "int key", "__flows__": "literal"},
        "text": "héllo ✓",
    }
    async with checkpointer.alock(session_id) as lease:
        await checkpointer.aput(lease, parent=None, state={"v": value}, changes={"v": Change(SET, value)},
                                run_id="r", node="n", step=1)
    assert (await checkpointer.aget(session_id)).state == {"v": value}


async def test_compression_and_encryption_round_trip(backend, durable):
    from cryptography.fernet import Fernet

    from flows.engine.checkpointers.codec import BlobCodec

    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    session_id = sid()
    text = "secret " * 200
    first = backend.create(compress=True, encryption_keys=[old_key])
    try:
        await put_turns(first, session_id, 2)
        async with first.alock(session_id) as lease:
            head = await first.aget_metadata(session_id)
            state = {**await first.amaterialise(head), "note": text}
            await first.aput(lease, parent=head, state=state, changes={"note": Change(SET, text)},
                             run_id="r", node="n", step=3)
        if not durable:  # same store, new keys: what a restart with rotated settings reads
            first.codec = BlobCodec(compress=True, encryption_keys=[new_key, old_key])
            assert (await first.aget(session_id)).state["note"] == text
            return
    finally:
        if hasattr(first, "aclose"):
            await first.aclose()
    rotated = backend.create(compress=True, encryption_keys=[new_key, old_key])
    try:
        assert (await rotated.aget(session_id)).state["note"] == text
    finally:
        if hasattr(rotated, "aclose"):
            await rotated.aclose()


async def test_max_state_bytes_is_a_clear_error_and_writes_nothing(backend):
    checkpointer = backend.create(max_state_bytes=500)
    try:
        session_id = sid()
        async with checkpointer.alock(session_id) as lease:
            with pytest.raises(StateTooLarge, match="max_state_bytes=500"):
                await checkpointer.aput(lease, parent=None, state={"x": "a" * 1000},
                                        changes={"x": Change(SET, "a" * 1000)}, run_id="r", node="n", step=1)
        assert await checkpointer.aget(session_id) is None
    finally:
        if hasattr(checkpointer, "aclose"):
            await checkpointer.aclose()


async def test_registered_types_fail_closed(checkpointer):
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: int
        y: int

    known = JsonSerializer(types=[Point])
    session_id = sid()
    async with checkpointer.alock(session_id) as lease:
        with pytest.raises(TypeError, match="register it"):
            await checkpointer.aput(lease, parent=None, state={"p": Point(1, 2)},
                                    changes={"p": Change(SET, Point(1, 2))}, run_id="r", node="n", step=1)
        await checkpointer.aput(lease, parent=None, state={"p": Point(1, 2)}, changes={"p": Change(SET, Point(1, 2))},
                                run_id="r", node="n", step=1, serializer=known)
    assert (await checkpointer.aget(session_id, serializer=known)).state == {"p": Point(1, 2)}
    with pytest.raises(TypeError, match="not registered"):
        await checkpointer.aget(session_id)


@pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "semi;colon", None])
async def test_session_ids_are_validated(checkpointer, bad):
    with pytest.raises(InvalidSessionId):
        await checkpointer.aget(bad)
    with pytest.raises(InvalidSessionId):
        await checkpointer.aacquire(bad)


async def test_session_ids_that_differ_only_in_case_are_two_sessions(checkpointer):
    """MySQL/MariaDB's default collations fold case: an id must be compared byte for byte there too."""
    lower = sid()
    upper = lower.upper()
    await put_turns(checkpointer, lower, 2, "low")
    await put_turns(checkpointer, upper, 1, "UP")
    assert (await checkpointer.aget(lower)).state == {"messages": ["low0", "low1"], "turn": 1}
    assert (await checkpointer.aget(upper)).state == {"messages": ["UP0"], "turn": 0}
    assert len(await checkpointer.alist(lower)) == 2 and len(await checkpointer.alist(upper)) == 1
    await checkpointer.adelete(upper)
    assert await checkpointer.aget(upper) is None
    assert (await checkpointer.aget(lower)).state["messages"] == ["low0", "low1"]


async def test_linear_storage_for_a_long_conversation(checkpointer):
    """1,000 turns of ~200-byte messages take < 12x the bytes of 100 turns."""
    message = "x" * 200

    async def grow(session_id: str, turns: int) -> int:
        state: dict = {}
        parent = None
        async with checkpointer.alock(session_id) as lease:
            for i in range(turns):
                old = state.get("messages")
                state = {"messages": (old or []) + [message], "status": f"turn {i}"}
                changes = {
                    "messages": Change(EXTEND, [message]) if old else Change(SET, [message]),
                    "status": Change(SET, state["status"]),
                }
                parent = await checkpointer.aput(lease, parent=parent, state=state, changes=changes,
                                                 run_id="r", node="n", step=i)
        return (await checkpointer.aget_stats())["bytes"]

    small = await grow(sid(), 100)
    large = await grow(sid(), 1000) - small
    assert large < 12 * small, (small, large)


async def test_concurrent_lockers_serialise(checkpointer):
    session_id = sid()
    order: list[int] = []

    async def worker(n: int) -> None:
        async with checkpointer.alock(session_id, timeout=30) as lease:
            head = await checkpointer.aget_metadata(session_id)
            state = await checkpointer.amaterialise(head) if head else {}
            messages = state.get("messages", []) + [n]
            change = Change(EXTEND, [n]) if head else Change(SET, messages)
            await checkpointer.aput(lease, parent=head, state={"messages": messages}, changes={"messages": change},
                                    run_id="r", node="w", step=1)
            order.append(n)

    await asyncio.gather(*(worker(n) for n in range(8)))
    state = (await checkpointer.aget(session_id)).state
    assert sorted(state["messages"]) == list(range(8))
    assert state["messages"] == order


async def test_fencing_tokens_are_never_reused_even_after_a_reset(checkpointer):
    session_id = sid()
    await put_turns(checkpointer, session_id, 1)
    first = await checkpointer.aacquire(session_id)
    await checkpointer.arelease(first)
    await checkpointer.adelete(session_id)
    second = await checkpointer.aacquire(session_id)
    assert second.token > first.token
    with pytest.raises(LeaseLost):
        await checkpointer.aput(first, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)},
                                run_id="r", node="n", step=1)
    await checkpointer.arelease(second)


async def test_one_checkpointer_serves_several_event_loops(checkpointer):
    """Sync callers use their own loop (flows.engine.sync): clients are per loop."""
    session_id = sid()
    await put_turns(checkpointer, session_id, 2)
    seen: list = []

    async def read_and_close() -> dict:
        try:
            return (await checkpointer.aget(session_id)).state
        finally:
            close = getattr(checkpointer, "aclose", None)
            if close is not None:
                await close()  # this loop's resources; the test loop's stay usable

    thread = threading.Thread(target=lambda: seen.append(asyncio.run(read_and_close())))
    thread.start()
    thread.join()
    assert seen == [{"messages": ["m0", "m1"], "turn": 1}]
    assert (await checkpointer.aget(session_id)).state == seen[0]
