"""DjangoCheckpointer beyond the conformance suite: the session row, query
counts, threads, cross-process locking and sync callers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connections

from flows.checkpointer import DjangoCheckpointer
from flows.engine import END, START, FlowEngine, LeaseLost, NodeError
from flows.engine.checkpointers.types import SET, Change
from flows.models import Checkpoint, FlowSession
from tests.backends import backend_specs
from tests.django.flows import approval_flow
from tests.flows_fixtures import AppState, seed_flow

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


class CountingExecutor(ThreadPoolExecutor):
    """One worker thread whose connection counts the queries it runs."""

    def __init__(self, alias: str = "default") -> None:
        self.queries: list[str] = []
        super().__init__(max_workers=1, initializer=self._install, initargs=(alias,))

    def _install(self, alias: str) -> None:
        def count(execute, sql, params, many, context):
            self.queries.append(sql)
            return execute(sql, params, many, context)

        connections[alias].execute_wrappers.append(count)

    def measure(self) -> CountingExecutor:
        self.queries.clear()
        return self


@pytest.fixture
def counting():
    executor = CountingExecutor()
    yield executor
    executor.shutdown()


async def grow(checkpointer, session_id: str, turns: int) -> None:
    flow = seed_flow(checkpointer)
    for i in range(turns):
        await flow.invoke({"messages": [f"m{i}"]}, session_id=session_id)


async def test_session_status_follows_the_head():
    checkpointer = DjangoCheckpointer(flow_name="approval")
    flow = approval_flow(checkpointer)
    session_id = sid()
    result = await flow.invoke({"messages": ["refund please"]}, session_id=session_id)
    assert result["__interrupt__"][0]["value"] == {"question": "approve the refund?"}
    row = await FlowSession.objects.aget(flow_name="approval", session_id=session_id)
    assert row.status == "interrupted"
    assert row.checkpoint_count == row.last_seq == len(await flow.list_checkpoints(session_id, limit=100))
    await flow.invoke(None, session_id=session_id, resume=True)
    row = await FlowSession.objects.aget(pk=row.pk)
    assert row.status == "idle"
    assert row.lease_until is None
    assert (await flow.get_state(session_id))["approved"] is True


async def test_a_crash_between_nodes_leaves_the_session_running():
    def boom(state):
        raise RuntimeError("model unavailable")

    checkpointer = DjangoCheckpointer(flow_name="crash")
    flow = FlowEngine(state_schema=AppState, checkpointer=checkpointer)
    flow.add_node("first", lambda state: {"status": "one"})
    flow.add_node("second", boom)
    flow.add_edge(START, "first")
    flow.add_edge("first", "second")
    flow.add_edge("second", END)
    session_id = sid()
    with pytest.raises(NodeError):
        await flow.invoke({"messages": []}, session_id=session_id)
    row = await FlowSession.objects.aget(flow_name="crash", session_id=session_id)
    assert row.status == "running"  # head has next=["second"]; marking "failed" is the engine hooks' job
    assert row.lease_until is None


async def test_reset_keeps_the_row_its_owner_and_a_growing_token(django_user_model):
    owner = await django_user_model.objects.acreate(username="ada")
    checkpointer = DjangoCheckpointer(flow_name="seed")
    session_id = sid()
    await FlowSession.objects.acreate(flow_name="seed", session_id=session_id, owner=owner)
    await grow(checkpointer, session_id, 3)
    before = await FlowSession.objects.aget(flow_name="seed", session_id=session_id)
    await seed_flow(checkpointer).reset_session(session_id)
    after = await FlowSession.objects.aget(pk=before.pk)
    assert after.owner_id == owner.pk
    assert (after.head_id, after.last_seq, after.checkpoint_count, after.status) == (None, 0, 0, "idle")
    assert after.lease_token > before.lease_token
    assert not await Checkpoint.objects.filter(session=after).aexists()


async def test_flows_do_not_share_sessions():
    one, two = DjangoCheckpointer(flow_name="one"), DjangoCheckpointer(flow_name="two")
    await grow(one, "same-id", 2)
    assert await two.aget("same-id") is None
    assert (await one.aget_stats())["checkpoints"] == 4  # input + node, per invoke
    assert (await two.aget_stats())["checkpoints"] == 0


async def test_deleting_the_row_fences_the_holder_and_tokens_keep_growing():
    checkpointer = DjangoCheckpointer(flow_name="fence")
    session_id = sid()
    lease = await checkpointer.aacquire(session_id)
    await FlowSession.objects.filter(flow_name="fence", session_id=session_id).adelete()
    with pytest.raises(LeaseLost):
        await checkpointer.aput(lease, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)},
                                run_id="r", node="n", step=1)
    again = await checkpointer.aacquire(session_id)
    assert again.token > lease.token
    await checkpointer.arelease(again)


async def test_ttl_expires_a_silent_session_and_prune_purges_it():
    checkpointer = DjangoCheckpointer(flow_name="ttl", ttl_seconds=1.0)
    session_id = sid()
    await grow(checkpointer, session_id, 2)
    assert await checkpointer.aget(session_id) is not None
    await asyncio.sleep(1.3)
    assert await checkpointer.aget(session_id) is None
    assert await checkpointer.aprune(keep=1) == 0
    assert not await FlowSession.objects.filter(flow_name="ttl", session_id=session_id).aexists()


@pytest.mark.parametrize("turns", [5, 60])
async def test_head_state_and_history_take_constant_queries(counting, turns):
    checkpointer = DjangoCheckpointer(flow_name="count", executor=counting)
    session_id = sid()
    await grow(checkpointer, session_id, turns)
    flow = seed_flow(checkpointer)

    counting.measure()
    state = await flow.get_state(session_id)
    assert len(state["messages"]) == turns
    assert len(counting.queries) == 2  # head row + its live writes

    for limit in (1, 5, 50):
        counting.measure()
        listed = await flow.list_checkpoints(session_id, limit=limit)
        assert len(listed) == min(limit, turns * 2)
        assert len(counting.queries) == 2, counting.queries  # head + one recursive chain query


async def test_one_checkpoint_is_one_transaction_of_constant_size(counting):
    checkpointer = DjangoCheckpointer(flow_name="count", executor=counting)
    session_id = sid()
    async with checkpointer.alock(session_id) as lease:
        counting.measure()
        parent = None
        for i in range(3):
            state = {"messages": [f"m{j}" for j in range(i + 1)], "turn": i}
            parent = await checkpointer.aput(
                lease, parent=parent, state=state, run_id="r", node="n", step=i,
                changes={"messages": Change(SET, state["messages"]), "turn": Change(SET, i)},
            )
        statements = [q.split()[0].upper() for q in counting.queries]
    # per checkpoint: BEGIN? UPDATE (fence) + INSERT checkpoint + INSERT writes
    assert statements.count("UPDATE") == 3
    assert statements.count("INSERT") == 6


async def test_orm_work_runs_off_the_event_loop_thread(monkeypatch):
    seen: set[str] = set()
    from flows import checkpointer as module

    original = module._with_connection_hygiene

    def spy(using, func, *args, **kwargs):
        seen.add(threading.current_thread().name)
        return original(using, func, *args, **kwargs)

    monkeypatch.setattr(module, "_with_connection_hygiene", spy)
    await grow(DjangoCheckpointer(flow_name="threads"), sid(), 2)
    assert seen and all(name.startswith("flows-orm") for name in seen)
    assert threading.current_thread().name not in seen


def test_sync_callers_use_the_engine_sync_facade():
    flow = seed_flow(DjangoCheckpointer(flow_name="sync"))
    session_id = sid()
    flow.sync.invoke({"messages": ["hello"], "status": "start", "counter": 0}, session_id=session_id)
    state = flow.sync.invoke({"messages": ["again"]}, session_id=session_id)
    assert state == {"messages": ["hello", "again"], "status": "start", "counter": 2}
    assert FlowSession.objects.get(flow_name="sync", session_id=session_id).status == "idle"


def _backend_names() -> list:
    names = [pytest.param("django-sqlite")]
    for service in ("postgres", "mariadb"):
        if os.environ.get(f"FLOWS_TEST_{service.upper()}_URL"):
            marks = [pytest.mark.django_db(transaction=True, databases=["default", service])]
            names.append(pytest.param(f"django-{service}", marks=marks))
    return names


@pytest.mark.parametrize("backend_name", _backend_names())
def test_four_processes_ten_invokes_each_leave_forty_messages(tmp_path, backend_name):
    spec = backend_specs(str(tmp_path))[backend_name]()
    session_id = sid()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.django.crossprocess_worker", spec.to_json(), session_id, f"w{n}", "10"],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
        )
        for n in range(4)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
    checkpointer = spec.create()
    state = seed_flow(checkpointer).sync.get_state(session_id)
    assert len(state["messages"]) == 40
    assert sorted(state["messages"]) == sorted(f"w{n}-{i}" for n in range(4) for i in range(10))
    assert state["counter"] == 40


async def test_a_pool_connection_is_checked_after_idling_not_before_every_call(monkeypatch):
    from django.db import connections

    from flows import checkpointer as module

    checks = []
    wrapper = type(connections["default"])
    original = wrapper.close_if_unusable_or_obsolete
    monkeypatch.setattr(wrapper, "close_if_unusable_or_obsolete", lambda self: checks.append(1) or original(self))
    executor = module.ThreadPoolExecutor(max_workers=1)  # one thread: its calls follow each other
    try:
        for _ in range(20):
            await module.run_in_orm_thread(lambda: None, executor=executor)
        assert len(checks) == 1  # the first call, on a connection not used for a while
        monkeypatch.setattr(module, "CHECK_AFTER_IDLE_SECONDS", 0.0)
        for _ in range(5):
            await module.run_in_orm_thread(lambda: None, executor=executor)
        assert len(checks) == 6
    finally:
        executor.shutdown()
