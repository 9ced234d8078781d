"""Stopping runs started by a request: cancel, rollback, and a newer run that interrupts."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import AsyncClient

from flows import registry
from flows.models import FlowSession
from flows.runs.detached import running_runs
from tests.api import flows as test_flows
from tests.api.conftest import session_url


@pytest.fixture
def gate(monkeypatch):
    gate = asyncio.Event()
    monkeypatch.setattr(test_flows, "GATE", gate)
    return gate


@pytest.fixture
async def client(alice):
    client = AsyncClient()
    await client.aforce_login(alice)
    return client


async def slow_stream(client, session_id: str, body: dict):
    """Starts a streamed invoke; returns its run id and the rest of its stream once the node works."""
    response = await client.post(session_url("streaming", session_id, "invoke"), body,
                                 content_type="application/json", headers={"accept": "text/event-stream"})
    assert response.status_code == 200
    chunks = response.streaming_content.__aiter__()
    received = b""
    while b'"chunk":"one "' not in received:
        received += await chunks.__anext__()
    run_id = json.loads(received.split(b"data: ", 1)[1].split(b"\n", 1)[0])["run_id"]
    for _ in range(100):  # its record is written within a batch
        if (await client.get(session_url("streaming", session_id, f"runs/{run_id}"))).status_code == 200:
            break
        await asyncio.sleep(0.05)
    return run_id, chunks


async def rest_of(chunks) -> list[dict]:
    text = b"".join([chunk async for chunk in chunks]).decode()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def cancel(client, session_id: str, run_id: str, action: str = "cancel"):
    return await client.post(session_url("streaming", session_id, f"runs/{run_id}/cancel"), {"action": action},
                             content_type="application/json")


async def test_cancelling_a_streamed_invoke_stops_it_and_keeps_its_work(client, gate):
    run_id, chunks = await slow_stream(client, "c", {"input": {"messages": ["go"], "slow": True}})
    response = await cancel(client, "c", run_id)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    events = await rest_of(chunks)
    assert events[-1]["event"] == "run_failed" and events[-1]["error"]["type"] == "RunStopped"
    flow = registry.get_flow("streaming")
    assert (await flow.get_state("c"))["messages"] == ["go"]  # its input stays; the node never finished
    session = (await client.get(session_url("streaming", "c"))).json()
    assert session["status"] == "failed" and session["next"] == ["speak"]  # stopped halfway, resumable
    row = await FlowSession.objects.aget(flow_name="streaming", session_id="c")
    assert row.last_error == "RunStopped: cancelled"
    gate.set()
    assert (await flow.invoke({"slow": False}, session_id="c"))["messages"] == ["go", "one two three"]


async def test_rollback_discards_what_the_run_checkpointed(client, gate):
    flow = registry.get_flow("streaming")
    await client.post("/api/flows/streaming/sessions/", {"session_id": "r"}, content_type="application/json")
    gate.set()
    await flow.invoke({"messages": ["before"]}, session_id="r")
    gate.clear()
    run_id, chunks = await slow_stream(client, "r", {"input": {"messages": ["doomed"], "slow": True}})
    response = await cancel(client, "r", run_id, "rollback")
    assert response.json()["status"] == "cancelled" and response.json()["error"] == "cancelled and rolled back"
    await rest_of(chunks)
    assert (await flow.get_state("r"))["messages"] == ["before", "one two three"]
    assert (await client.get(session_url("streaming", "r"))).json()["status"] == "idle"  # where it was before


async def test_a_newer_invoke_interrupts_the_running_one_and_runs_on_its_work(client, gate):
    run_id, chunks = await slow_stream(client, "i", {"input": {"messages": ["first"], "slow": True}})
    second = await client.post(session_url("streaming", "i", "invoke"),
                               {"input": {"messages": ["second"], "slow": False}, "on_busy": "interrupt"},
                               content_type="application/json")
    assert second.status_code == 200, second.content
    assert second.json()["state"]["messages"] == ["first", "second", "one two three"]
    first_events = await rest_of(chunks)
    assert first_events[-1]["error"]["type"] == "RunStopped"
    stopped = (await client.get(session_url("streaming", "i", f"runs/{run_id}"))).json()
    assert stopped["status"] == "cancelled" and "interrupt" in stopped["error"]
    await asyncio.gather(*running_runs())


async def test_a_stopped_json_invoke_answers_409(client, gate):
    async def stop_it_when_it_runs():
        from flows.models import Run

        while not await Run.objects.filter(session_id="j", status="running").aexists():
            await asyncio.sleep(0.05)
        run = await Run.objects.filter(session_id="j").afirst()
        await cancel(client, "j", run.run_id)

    stopper = asyncio.ensure_future(stop_it_when_it_runs())
    response = await client.post(session_url("streaming", "j", "invoke"), {"input": {"messages": ["x"], "slow": True}},
                                 content_type="application/json")
    await stopper
    assert response.status_code == 409 and response.json()["code"] == "run_stopped"


async def test_a_call_waiting_for_the_session_beats_its_heartbeat(client, gate, monkeypatch):
    """Silent while it waited (no event yet), recovery took a live waiting call for a dead one."""
    from flows.models import Run
    from flows.runs import recorder

    monkeypatch.setattr(recorder, "HEARTBEAT_SECONDS", 0.05)
    await slow_stream(client, "hb", {"input": {"messages": ["first"], "slow": True}})
    waiting = asyncio.ensure_future(client.post(session_url("streaming", "hb", "invoke"),
                                                {"input": {"messages": ["second"]}, "on_busy": "wait"},
                                                content_type="application/json"))
    for _ in range(500):
        if await Run.objects.filter(session_id="hb").acount() == 2:
            break
        await asyncio.sleep(0.02)
    second = await Run.objects.filter(session_id="hb").order_by("-pk").afirst()
    assert second is not None and second.run_id != (await Run.objects.filter(session_id="hb").afirst()).run_id
    for _ in range(500):
        now = await Run.objects.aget(pk=second.pk)
        if now.heartbeat_at > second.heartbeat_at:
            break
        await asyncio.sleep(0.02)
    assert now.heartbeat_at > second.heartbeat_at and now.engine_run_id == ""  # beating, and still waiting
    gate.set()
    assert (await waiting).status_code == 200
    await asyncio.gather(*running_runs())


async def test_wait_is_bounded_and_answers_the_run_as_it_stands(client, gate):
    run_id, chunks = await slow_stream(client, "w", {"input": {"messages": ["go"], "slow": True}})
    url = session_url("streaming", "w", f"runs/{run_id}/wait")
    bad = await client.get(url, {"timeout": "0"})
    assert bad.status_code == 400 and bad.json()["fields"] == {"timeout": ["got '0'"]}
    response = await client.get(url, {"timeout": "1"})
    body = json.loads(b"".join([chunk async for chunk in response.streaming_content]))
    assert body["status"] == "running" and body["state"]["messages"] == ["go"]  # still going after 1 s
    gate.set()
    await rest_of(chunks)
    response = await client.get(url, {"timeout": "5"})
    body = json.loads(b"".join([chunk async for chunk in response.streaming_content]))
    assert body["status"] == "succeeded" and body["state"]["messages"] == ["go", "one two three"]
