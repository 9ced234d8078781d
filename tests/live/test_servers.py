"""Sockets against running servers: a real WebSocket client, task workers, and the channel layer."""

from __future__ import annotations

import contextlib
import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

from tests.backends import service_url
from tests.servers import another_server, fresh_postgres_database, start_server


class Socket:
    """A session socket of a real client, as a browser would open it (Origin, token subprotocol)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        assert ws.subprotocol == "flows"
        self.state = self.receive()
        assert self.state["type"] == "state"

    def receive(self, timeout: float = 20) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message))

    def until_finished(self) -> list[dict]:
        seen = []
        while True:
            message = self.receive()
            seen.append(message)
            if message["type"] == "event" and message["event"]["event"] in ("run_finished", "run_failed"):
                return seen



@contextlib.contextmanager
def socket(base: str, flow: str, session_id: str, token: str):
    url = base.replace("http://", "ws://") + f"/ws/flows/{flow}/sessions/{session_id}/"
    with connect(url, origin=Origin(base), subprotocols=[Subprotocol("flows"), Subprotocol(f"token.{token}")],
                 open_timeout=10) as ws:
        yield Socket(ws)


def states(messages: list[dict]) -> list[list]:
    return [m["event"]["state"]["messages"] for m in messages if m["type"] == "event"
            and m["event"]["event"] == "run_finished"]


def watch_three_ways(base: str, other: str, live, session_id: str) -> None:
    """A socket on ``other`` sees runs started by a socket on ``base``, over REST, and in the background."""
    token = live.tokens["alice"]
    httpx.post(base + "/api/flows/sleepy/sessions/", json={"session_id": session_id}, headers=live.headers())
    with socket(base, "sleepy", session_id, token) as starter, socket(other, "sleepy", session_id, token) as watcher:
        starter.send({"type": "invoke", "input": {"messages": ["from a socket"]}})
        assert states(watcher.until_finished()) == [["from a socket"]]
        httpx.post(base + f"/api/flows/sleepy/sessions/{session_id}/invoke/",
                   json={"input": {"messages": ["over REST"]}}, headers=live.headers(), timeout=30)
        assert states(watcher.until_finished()) == [["from a socket", "over REST"]]
        starter.send({"type": "run", "input": {"messages": ["in the background"]}})
        seen = watcher.until_finished()
        assert states(seen) == [["from a socket", "over REST", "in the background"]]
        ids = [m["id"] for m in seen if m["type"] == "event"]
        assert ids == list(range(1, len(ids) + 1))


def test_without_redis_a_watcher_follows_the_log_and_sees_the_task_workers_runs(tmp_path):
    """The demo's set-up: SQLite, the in-memory channel layer, the task worker in its own process."""
    with start_server(tmp_path, task_workers=1) as live:
        watch_three_ways(live.url, live.url, live, "log")


def test_with_redis_watchers_on_two_asgi_processes_see_every_run(tmp_path):
    env = {"REDIS_URL": service_url("redis")}
    with fresh_postgres_database() as database, start_server(tmp_path, database_url=database, task_workers=1,
                                                            env=env) as live, another_server(live, tmp_path) as second:
        watch_three_ways(live.url, second, live, "redis")


def test_refused_sockets_over_the_network(tmp_path):
    with start_server(tmp_path) as live:
        httpx.post(live.url + "/api/flows/sleepy/sessions/", json={"session_id": "hers"}, headers=live.headers())
        url = live.url.replace("http://", "ws://") + "/ws/flows/sleepy/sessions/hers/"
        with connect(url, origin=live.url, subprotocols=["flows", f"token.{live.tokens['bob']}"]) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert ws.close_code == 4403, closed.value
        with pytest.raises(InvalidStatus) as refused:  # a page of another site may not open it
            connect(url, origin="http://evil.example", subprotocols=["flows", f"token.{live.tokens['alice']}"])
        assert refused.value.response.status_code == 403
