"""…/invoke/ with ``Accept: text/event-stream``: the run's events as server-sent events."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import AsyncClient

from flows import registry
from flows.api.streaming import frame
from flows.runs.detached import running_runs
from tests.api import flows as test_flows
from tests.api.conftest import session_url


def parse_events(text: str) -> list[tuple[int, str, dict]]:
    """(id, event, data) of each server-sent event in ``text`` (comments skipped)."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
        if fields:
            events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return events


@pytest.fixture
async def client(alice):
    client = AsyncClient()
    await client.aforce_login(alice)
    return client


async def stream(client, flow: str, session_id: str, body: dict):
    response = await client.post(session_url(flow, session_id, "invoke"), body, content_type="application/json",
                                 headers={"accept": "text/event-stream"})
    return response


async def read(response) -> list[tuple[int, str, dict]]:
    return parse_events(b"".join([chunk async for chunk in response.streaming_content]).decode())


async def test_a_run_streams_its_events_in_order(client):
    response = await stream(client, "streaming", "s", {"input": {"messages": ["go"]}})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    events = await read(response)
    assert [e[0] for e in events] == list(range(1, len(events) + 1))
    names = [e[1] for e in events]
    assert names == ["run_started", "node_started", "chunk", "chunk", "chunk", "node_finished", "run_finished"]
    assert all(data["event"] == name for _, name, data in events)
    assert "".join(d["chunk"] for _, name, d in events if name == "chunk") == "one two three"
    assert events[-1][2]["state"] == {"messages": ["go", "one two three"]}
    assert {d["run_id"] for _, _, d in events} == {events[0][2]["run_id"]}
    state = await registry.get_flow("streaming").get_state("s")
    assert state == events[-1][2]["state"]


async def test_an_interrupt_ends_the_stream_with_the_question(client):
    events = await read(await stream(client, "approval", "a", {"input": {"messages": ["x"]}}))
    kind, data = events[-1][1], events[-1][2]
    assert kind == "interrupted" and data["interrupts"][0]["value"] == {"question": "approve the refund?"}
    assert data["state"]["messages"] == ["x", "draft ready"]
    resumed = await read(await stream(client, "approval", "a", {"resume": "ok"}))
    assert resumed[-1][1] == "run_finished" and resumed[-1][2]["state"]["messages"][-1] == "approved: ok"


async def test_a_failing_node_ends_the_stream_with_run_failed(client):
    events = await read(await stream(client, "chat", "f", {"input": {"messages": ["x"], "fail": True}}))
    kind, data = events[-1][1], events[-1][2]
    assert kind == "run_failed"
    assert data["error"]["node"] == "reply" and "asked to fail" in data["error"]["message"]


async def test_errors_before_the_run_are_json_not_a_stream(client):
    response = await stream(client, "seed", "s", {"input": {"messages": None}})
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    fields = json.loads(response.content)["fields"]
    assert fields == {"input.messages": ["Input should be a valid array (got NoneType)"]}
    response = await stream(client, "chat", "s", {"resume": True})
    assert response.status_code == 400 and json.loads(response.content)["code"] == "nothing_to_resume"


@pytest.fixture
def gate(monkeypatch):
    gate = asyncio.Event()
    monkeypatch.setattr(test_flows, "GATE", gate)
    return gate


async def test_a_run_goes_on_to_its_end_when_the_client_leaves(client, gate):
    response = await stream(client, "streaming", "early", {"input": {"messages": ["go"], "slow": True}})
    chunks = response.streaming_content.__aiter__()
    received = b""
    while b'"chunk":"one "' not in received:
        received += await chunks.__anext__()
    await chunks.aclose()  # the client went away while the node works
    flow = registry.get_flow("streaming")
    assert (await flow.get_checkpoint("early")).metadata.next == ("speak",)  # still running
    gate.set()
    await asyncio.gather(*running_runs())
    assert (await flow.get_state("early"))["messages"] == ["go", "one two three"]  # the reply was kept


def test_frames_are_server_sent_events():
    text = frame(7, {"event": "chunk", "chunk": "hé\nllo"})
    assert text == 'id: 7\nevent: chunk\ndata: {"event":"chunk","chunk":"hé\\nllo"}\n\n'
