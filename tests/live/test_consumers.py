"""The session socket, in process (Channels' WebsocketCommunicator)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from flows.live.auth import TokenAuthMiddleware
from flows.routing import websocket_urlpatterns
from flows.runs.detached import running_runs
from tests.api import flows as test_flows

APP = AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))


@pytest.fixture
def tokens(alice, bob):
    return {user.username: Token.objects.create(user=user).key for user in (alice, bob)}


async def socket(session_id: str, token: str | None, flow: str = "chat", subprotocols=None):
    path = f"/ws/flows/{flow}/sessions/{session_id}/" + (f"?token={token}" if token and not subprotocols else "")
    communicator = WebsocketCommunicator(APP, path, subprotocols=subprotocols)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive(communicator, timeout: float = 5) -> dict:
    return json.loads(await communicator.receive_from(timeout))


async def until(communicator, event: str) -> list[dict]:
    """Messages up to the first event ``event`` of a run."""
    seen = []
    while True:
        message = await receive(communicator)
        seen.append(message)
        if message["type"] == "event" and message["event"]["event"] == event:
            return seen


def events_of(messages: list[dict]) -> list[str]:
    return [m["event"]["event"] for m in messages if m["type"] == "event"]


async def test_a_socket_runs_the_flow_and_receives_its_events_in_order(tokens):
    ws = await socket("s1", tokens["alice"])
    state = await receive(ws)
    assert state == {"type": "state", "state": {}, "checkpoint_id": None, "run_id": None, "step": None, "next": [],
                     "interrupts": [],
                     "status": "idle"}
    await ws.send_json_to({"type": "invoke", "input": {"messages": ["hi"]}})
    seen = await until(ws, "run_finished")
    accepted = next(m for m in seen if m["type"] == "accepted")
    assert accepted["action"] == "invoke" and accepted["run_id"]
    assert events_of(seen) == ["run_started", "node_started", "node_finished", "run_finished"]
    ids = [m["id"] for m in seen if m["type"] == "event"]
    assert ids == [1, 2, 3, 4] and {m["run_id"] for m in seen if m["type"] == "event"} == {accepted["run_id"]}
    assert seen[-1]["event"]["state"] == {"messages": ["hi", "echo: hi"], "turns": 1}
    await ws.disconnect()


async def test_every_watcher_sees_runs_started_anywhere(tokens, api):
    first = await socket("s2", tokens["alice"])
    second = await socket("s2", None, subprotocols=["flows", f"token.{tokens['alice']}"])
    assert (await receive(first))["type"] == (await receive(second))["type"] == "state"
    await first.send_json_to({"type": "invoke", "input": {"messages": ["from a socket"]}})
    assert events_of(await until(second, "run_finished"))[-1] == "run_finished"
    await asyncio.to_thread(api.post, "/api/flows/chat/sessions/s2/invoke/", {"input": {"messages": ["over REST"]}},
                            format="json")
    over_rest = await until(second, "run_finished")
    assert over_rest[-1]["event"]["state"]["messages"][-1] == "echo: over REST"
    await first.send_json_to({"type": "run", "input": {"messages": ["in the background"]}})
    from flows.runs.execution import execute

    accepted = await accepted_for(first, "run")
    await execute(accepted["run_id"])  # what a task worker does
    background = await until(second, "run_finished")
    assert background[-1]["run_id"] == accepted["run_id"]
    await first.disconnect()
    await second.disconnect()


async def accepted_for(communicator, action: str) -> dict:
    """The answer to the socket's message ``action`` (what came before it is skipped)."""
    while True:
        message = await receive(communicator)
        if message["type"] == "accepted" and message["action"] == action:
            return message


async def test_bad_messages_get_an_error_and_the_socket_stays_open(tokens):
    ws = await socket("s3", tokens["alice"])
    await receive(ws)
    await ws.send_to(text_data="{not json")
    assert (await receive(ws))["code"] == "parse_error"
    await ws.send_json_to({"type": "dance"})
    assert (await receive(ws))["code"] == "invalid"
    await ws.send_json_to({"type": "invoke", "input": {"turns": "many"}})
    error = await receive(ws)
    assert error["code"] == "invalid_input" and list(error["fields"]) == ["input.turns"]
    await ws.send_json_to({"type": "invoke", "inputs": {}})
    assert (await receive(ws))["fields"] == {"inputs": ["unknown field; use input, resume, checkpoint_id, on_busy"]}
    await ws.send_json_to({"type": "cancel", "run_id": "nope"})
    assert (await receive(ws))["code"] == "run_not_found"
    await ws.send_json_to({"type": "invoke", "input": {"messages": ["still here"]}})
    assert events_of(await until(ws, "run_finished"))[-1] == "run_finished"
    await ws.disconnect()


async def test_unauthorised_sockets_are_closed(tokens, api):
    await asyncio.to_thread(api.post, "/api/flows/chat/sessions/private/invoke/", {"input": {"messages": ["x"]}},
                            format="json")
    for token, code in ((None, 4401), ("wrong", 4401), (tokens["bob"], 4403)):
        communicator = WebsocketCommunicator(APP, "/ws/flows/chat/sessions/private/" +
                                             (f"?token={token}" if token else ""))
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_output(5) == {"type": "websocket.close", "code": code}
    for path, code in (("nope/sessions/x", 4404), ("chat/sessions/" + "x" * 300, 4400)):
        communicator = WebsocketCommunicator(APP, f"/ws/flows/{path}/?token={tokens['alice']}")
        await communicator.connect()
        assert (await communicator.receive_output(5))["code"] == code


async def test_a_late_joiner_gets_the_state_and_the_running_runs_events_so_far(tokens, monkeypatch):
    gate = asyncio.Event()
    monkeypatch.setattr(test_flows, "GATE", gate)
    early = await socket("s4", tokens["alice"], flow="streaming")
    await receive(early)
    await early.send_json_to({"type": "invoke", "input": {"messages": ["go"], "slow": True}})
    await until(early, "chunk")  # the node is working, and waits
    for _ in range(100):  # its first events are in the log
        from flows.models import RunEvent

        if await RunEvent.objects.filter(run__session_id="s4", event="chunk").aexists():
            break
        await asyncio.sleep(0.05)
    late = await socket("s4", tokens["alice"], flow="streaming")
    state = await receive(late)
    assert state["status"] == "running" and state["state"]["messages"] == ["go"]
    so_far = [await receive(late) for _ in range(3)]
    assert [m["event"]["event"] for m in so_far] == ["run_started", "node_started", "chunk"]
    gate.set()
    rest = await until(late, "run_finished")
    assert [m["id"] for m in so_far + rest] == list(range(1, len(so_far + rest) + 1))  # nothing twice, no gap
    await asyncio.gather(*running_runs())
    await early.disconnect()
    await late.disconnect()


async def test_connecting_to_a_new_session_makes_it_the_callers(tokens, api, bobs):
    ws = await socket("mine-now", tokens["alice"])
    await receive(ws)
    # nobody else can take the id and have their runs shown on alice's socket
    answer = await asyncio.to_thread(bobs.post, "/api/flows/chat/sessions/mine-now/invoke/",
                                     {"input": {"messages": ["hi"]}}, format="json")
    assert answer.status_code == 404
    listed = await asyncio.to_thread(api.get, "/api/flows/chat/sessions/")
    assert "mine-now" in [row["session_id"] for row in listed.json()["results"]]
    await ws.disconnect()


async def test_a_batch_after_a_gap_comes_after_what_was_missed(tokens, settings):
    """With a channel layer that crosses processes: a batch the layer never delivered is read from the log."""
    from flows.live import fanout
    from flows.models import Run, RunEvent
    from tests.backends import service_url

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [service_url("redis")], "prefix": "gap-test"}}}
    ws = await socket("gaps", tokens["alice"])
    await receive(ws)
    run = await Run.objects.acreate(run_id="gappy", flow_name="chat", session_id="gaps", status="running")
    data = {seq: json.dumps({"event": "node_started", "n": seq}) for seq in (1, 2, 3)}
    await RunEvent.objects.abulk_create([RunEvent(run=run, seq=seq, event="node_started", data=data[seq])
                                         for seq in (1, 2, 3)])
    await fanout.publish("chat", "gaps", "gappy", [(3, "node_started", data[3])])  # 1 and 2 were "lost"
    received = [await receive(ws) for _ in range(3)]
    assert [(m["id"], m["event"]["n"]) for m in received] == [(1, 1), (2, 2), (3, 3)]
    await fanout.publish("chat", "gaps", "gappy", [(2, "node_started", data[2])])  # a repeat is dropped
    assert await ws.receive_nothing(0.3)
    await ws.disconnect()
