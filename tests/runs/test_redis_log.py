"""Runs' events in Redis streams (``FLOWS["EVENTS_REDIS_URL"]``), against a real Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from django.test import AsyncClient

from flows import registry
from flows.models import Run, RunEvent
from flows.runs import follow, redis_log
from flows.runs.execution import execute
from flows.runs.stopping import mark_stop
from tests.api.conftest import session_url
from tests.backends import service_url
from tests.redis_servers import Relay, private_redis


@pytest.fixture(autouse=True)
def redis_events(settings, flows_registry):
    """This test's runs log their events in Redis, under keys of their own."""
    settings.FLOWS = {**settings.FLOWS, "EVENTS_REDIS_URL": service_url("redis"),
                      "EVENTS_REDIS_PREFIX": f"flows:test:{uuid.uuid4().hex[:8]}:"}


@pytest.fixture
async def client(alice):
    client = AsyncClient()
    await client.aforce_login(alice)
    return client


async def collect(run: Run, after: int = 0) -> list[follow.StoredEvent]:
    key = follow.RunKey(run.flow_name, run.session_id, run.run_id)
    return [event async for event in follow.follow_run(run.pk, key, after) if event is not None]


async def test_a_runs_events_go_to_redis_not_to_the_database(client):
    response = await client.post(session_url("chat", "r1", "invoke"), {"input": {"messages": ["hi"]}},
                                 content_type="application/json")
    assert response.status_code == 200
    run = await Run.objects.aget(session_id="r1")
    assert not await RunEvent.objects.filter(run=run).aexists()
    events = await collect(run)
    assert [(e.id, e.event) for e in events] == [(1, "run_started"), (2, "node_started"), (3, "node_finished"),
                                                 (4, "run_finished")]
    assert json.loads(events[-1].data)["state"]["messages"] == ["hi", "echo: hi"]
    assert run.last_event == 4 and run.status == "succeeded"
    assert [e.id for e in await collect(run, after=2)] == [3, 4]


async def test_a_stream_resumes_after_last_event_id_from_redis(client):
    await client.post(session_url("chat", "r2", "invoke"), {"input": {"messages": ["hi"]}},
                      content_type="application/json")
    run = await Run.objects.aget(session_id="r2")
    response = await client.get(session_url("chat", "r2", f"runs/{run.run_id}/stream"),
                                headers={"accept": "text/event-stream", "last-event-id": "2"})
    text = b"".join([chunk async for chunk in response.streaming_content]).decode()
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert ids == [3, 4] and "event: run_finished" in text


async def test_a_background_run_is_followed_live_from_the_session_stream(client):
    following: list[follow.StoredEvent] = []

    async def watch():
        async for event in follow.follow_session("chat", "r3"):
            if event is not None:
                following.append(event)
                if event.event == "run_finished":
                    return

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0.2)  # it follows from now on
    answer = await client.post(session_url("chat", "r3", "runs"), {"input": {"messages": ["bg"]}},
                               content_type="application/json")
    await execute(answer.json()["run_id"])
    await asyncio.wait_for(watcher, 10)
    assert [e.seq for e in following] == [1, 2, 3, 4] and {e.run_id for e in following} == {answer.json()["run_id"]}
    assert [e.id for e in following] == sorted(e.id for e in following)  # the session's own ids, increasing
    assert await follow.newest_session_event("chat", "r3") == following[-1].id


def test_a_retried_batch_is_not_written_twice():
    key = redis_log.RunKey("chat", "r4", "run-x")
    batch = [(1, "run_started", "{}"), (2, "node_started", "{}")]
    assert redis_log.append(key, batch) == 2
    assert redis_log.append(key, batch + [(3, "run_finished", "{}")]) == 1
    assert redis_log.append(key, batch) == 0


async def test_a_run_ended_before_it_started_ends_its_stream_in_redis():
    run = await Run.objects.acreate(run_id="never", flow_name="chat", session_id="r5", status="pending",
                                    origin="background")
    from flows.checkpointer import run_in_orm_thread

    assert await run_in_orm_thread(mark_stop, "never", "cancel")
    events = await collect(await Run.objects.aget(pk=run.pk))
    assert [(e.id, e.event) for e in events] == [(1, "run_failed")]
    assert json.loads(events[0].data)["error"]["message"] == "cancelled before it started"


async def test_a_follower_ends_with_the_run_even_if_its_last_event_never_reached_redis():
    run = await Run.objects.acreate(run_id="lossy", flow_name="chat", session_id="r6", status="running")
    key = follow.RunKey("chat", "r6", "lossy")
    await asyncio.to_thread(redis_log.append, key, [(1, "run_started", "{}")])
    seen: list[int] = []

    async def follow_it():
        async for event in follow.follow_run(run.pk, key):
            seen.append(event.id)

    following = asyncio.ensure_future(follow_it())
    await asyncio.sleep(0.3)
    await Run.objects.filter(pk=run.pk).aupdate(status="succeeded", last_event=2)
    await asyncio.wait_for(following, 5)
    assert seen == [1]


async def test_redis_down_does_not_fail_the_run(settings, client):
    settings.FLOWS = {**settings.FLOWS, "EVENTS_REDIS_URL": "redis://127.0.0.1:1/0"}
    response = await client.post(session_url("chat", "r7", "invoke"), {"input": {"messages": ["hi"]}},
                                 content_type="application/json")
    assert response.status_code == 200 and response.json()["state"]["messages"] == ["hi", "echo: hi"]
    run = await Run.objects.aget(session_id="r7")
    assert run.status == "succeeded" and run.last_event == 4  # its record is whole; its events are not kept


async def test_a_socket_without_a_crossing_channel_layer_follows_the_redis_log(alice):
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from rest_framework.authtoken.models import Token

    from flows.live.auth import TokenAuthMiddleware
    from flows.routing import websocket_urlpatterns

    token = (await Token.objects.acreate(user=alice)).key
    app = AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
    ws = WebsocketCommunicator(app, f"/ws/flows/chat/sessions/r8/?token={token}")
    assert (await ws.connect())[0]
    assert json.loads(await ws.receive_from(5))["type"] == "state"
    await registry.get_flow("chat").invoke({"messages": ["from a script"]}, session_id="r8")
    kinds = []
    while not kinds or kinds[-1] != "run_finished":
        message = json.loads(await ws.receive_from(5))
        kinds.append(message["event"]["event"])
    assert kinds == ["run_started", "node_started", "node_finished", "run_finished"]
    await ws.disconnect()



# -- a lost connection: the log retries, as the checkpointer does ---------------------------------


def via(relay: Relay) -> str:
    target = urlsplit(service_url("redis"))
    userinfo = target.netloc.rpartition("@")[0]
    return urlunsplit((target.scheme, f"{userinfo + '@' if userinfo else ''}127.0.0.1:{relay.port}",
                       target.path, target.query, ""))


async def test_an_append_whose_reply_was_lost_writes_its_batch_once(settings):
    target = urlsplit(service_url("redis"))
    relay = await Relay.start(target.hostname or "127.0.0.1", target.port or 6379)
    settings.FLOWS = {**settings.FLOWS, "EVENTS_REDIS_URL": via(relay)}
    key = redis_log.RunKey("chat", "r9", "run-lost")
    try:
        relay.drop_reply_to = b"XREVRANGE"  # the append script's text: the server runs it, the reply is lost
        batch = [(1, "run_started", "{}"), (2, "node_started", "{}")]
        assert await asyncio.to_thread(redis_log.append, key, batch) == 0  # the replay found both there
        assert relay.dropped == 1
        assert await asyncio.to_thread(redis_log.append, key, [(3, "run_finished", "{}")]) == 1
        assert [row[:2] for row in await redis_log.read_run(key, 0)] == [
            (1, "run_started"), (2, "node_started"), (3, "run_finished")]
        assert await redis_log.newest_in_session("chat", "r9") == 3  # the session's stream has each once too
    finally:
        await redis_log._client().aclose()
        await relay.stop()


async def test_the_log_and_a_blocked_follower_come_back_after_their_connections_are_killed(settings):
    async with private_redis() as url:
        settings.FLOWS = {**settings.FLOWS, "EVENTS_REDIS_URL": url}
        admin = aioredis.Redis.from_url(url)
        key = redis_log.RunKey("chat", "r10", "run-killed")
        try:
            await asyncio.to_thread(redis_log.append, key, [(1, "run_started", "{}")])
            waiting = asyncio.ensure_future(redis_log.wait_for_run(key, 1, 3.0))
            deadline = asyncio.get_running_loop().time() + 10
            while not any("b" in client["flags"] for client in await admin.client_list()):  # blocked in XREAD
                assert asyncio.get_running_loop().time() < deadline, "the follower never blocked"
                await asyncio.sleep(0.01)
            assert await admin.client_kill_filter(_type="normal", skipme=True) == 2  # the writer's, the follower's
            await asyncio.to_thread(redis_log.append, key, [(2, "node_started", "{}"), (3, "run_finished", "{}")])
            assert [row[:2] for row in await asyncio.wait_for(waiting, 10)] == [(2, "node_started"),
                                                                                (3, "run_finished")]
            assert [row[0] for row in await redis_log.read_run(key, 0)] == [1, 2, 3]
        finally:
            await redis_log._client().aclose()
            await admin.aclose()
