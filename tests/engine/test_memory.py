"""InMemoryCheckpointer specifics: stats, linear growth, thread safety, TTL."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, TypedDict

import pytest

from flows.engine import END, START, FlowEngine
from flows.engine.checkpointers import Checkpointer, InMemoryCheckpointer, InMemoryStore


class Chat(TypedDict):
    messages: Annotated[list, operator.add]
    status: str


def chat_flow(checkpointer) -> FlowEngine:
    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("reply", lambda s: {"messages": ["r" * 200], "status": f"{len(s['messages'])} seen"})
    flow.add_edge(START, "reply").add_edge("reply", END)
    return flow


async def conversation_bytes(turns: int) -> tuple[int, dict]:
    checkpointer = InMemoryCheckpointer()
    flow = chat_flow(checkpointer)
    for _ in range(turns):
        await flow.invoke({"messages": ["u" * 200]}, session_id="long")
    return checkpointer.get_stats()["bytes"], checkpointer.get_stats()


async def test_stats_and_linear_growth_of_a_long_conversation():
    small, stats_small = await conversation_bytes(100)
    large, stats_large = await conversation_bytes(1000)
    assert stats_small["sessions"] == 1 and stats_small["checkpoints"] == 200
    assert stats_large["checkpoints"] == 2000
    assert large < 12 * small, (small, large)  # a full copy per step would be ~100x


async def test_state_is_shared_safely_between_threads():
    checkpointer = InMemoryCheckpointer()
    flow = chat_flow(checkpointer)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            asyncio.run(_in_thread(flow, n))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    # each thread drives the flow through its own event loop
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    state = await flow.get_state("shared")
    assert len([m for m in state["messages"] if m.startswith("t")]) == 20


async def _in_thread(flow: FlowEngine, n: int) -> None:
    for i in range(5):
        await flow.invoke({"messages": [f"t{n}-{i}"]}, session_id="shared")


async def test_ttl_expires_idle_sessions(monkeypatch):
    import flows.engine.checkpointers.memory as memory

    now = [1000.0]
    monkeypatch.setattr(memory.time, "monotonic", lambda: now[0])
    checkpointer = InMemoryCheckpointer(ttl_seconds=60)
    flow = chat_flow(checkpointer)
    await flow.invoke({"messages": ["hi"]}, session_id="idle")
    now[0] += 59
    assert await flow.get_state("idle") is not None
    now[0] += 2
    assert await flow.get_state("idle") is None
    assert checkpointer.get_stats()["sessions"] == 0


async def test_renewal_survives_a_store_outage_until_the_lease_runs_out(monkeypatch):
    from flows.engine.checkpointers.leases import KeepAlive
    from flows.engine.errors import CheckpointerUnavailable

    class Flaky(InMemoryStore):
        down = True

        async def renew(self, lease, lease_seconds):
            if self.down:
                raise CheckpointerUnavailable("store unreachable")
            return await super().renew(lease, lease_seconds)

    store = Flaky()
    checkpointer = Checkpointer(store, lease_seconds=0.3)
    lease = await checkpointer.aacquire("blip")
    keeper = KeepAlive(store.renew, lease, 0.3)
    await asyncio.sleep(0.15)  # one failed renewal: still ours
    assert not lease.lost
    store.down = False
    await asyncio.sleep(0.35)  # renewals resumed and kept it
    assert not lease.lost
    store.down = True
    await asyncio.sleep(1.0)  # the outage outlasted the lease (with room for a slow machine)
    assert lease.lost
    keeper.stop()


async def test_a_failed_release_does_not_hide_the_run_error():
    from flows.engine.errors import CheckpointerUnavailable

    class Down(InMemoryStore):
        released = 0

        async def release(self, lease):
            self.released += 1
            raise CheckpointerUnavailable("store unreachable")

    store = Down()
    with pytest.raises(KeyError, match="the real problem"):
        async with Checkpointer(store).alock("err"):
            raise KeyError("the real problem")
    assert store.released == 1


async def test_a_write_that_failed_can_be_made_again_as_the_same_delta():
    from flows.engine.checkpointers.types import SET, Change
    from flows.engine.errors import CheckpointerUnavailable

    class Once(InMemoryStore):
        fail = False

        async def write(self, lease, record, writes):
            if self.fail:
                self.fail = False
                raise CheckpointerUnavailable("store unreachable")
            await super().write(lease, record, writes)

    store = Once()
    checkpointer = Checkpointer(store)
    async with checkpointer.alock("again") as lease:
        first = await checkpointer.aput(lease, parent=None, state={"turn": 0}, changes={"turn": Change(SET, 0)},
                                        run_id="r", node="n", step=0)
        store.fail = True
        with pytest.raises(CheckpointerUnavailable):
            await checkpointer.aput(lease, parent=first, state={"turn": 1}, changes={"turn": Change(SET, 1)},
                                    run_id="r", node="n", step=1)
        again = await checkpointer.aput(lease, parent=first, state={}, changes={"turn": Change(SET, 2)},
                                        run_id="r", node="n", step=1)
    assert again.seq == first.seq + 1  # a delta on its parent, not a fork
    assert (await checkpointer.aget("again")).state == {"turn": 2}
