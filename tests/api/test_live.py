"""The API against a running server (uvicorn, the demo project), through HTTP only."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from tests.servers import fresh_postgres_database, start_server


def test_the_seed_pages_scenario_over_http(server):
    with server.client() as http:
        base = "/api/flows/seed/sessions"
        first = http.post(f"{base}/user-123/invoke/",
                          json={"input": {"messages": [], "status": "start", "counter": 0}}).json()
        assert first["state"] == {"messages": [], "status": "start", "counter": 1}
        second = http.post(f"{base}/user-123/invoke/",
                           json={"input": {"messages": ["new input"], "status": "continuing"}}).json()
        assert second["state"]["messages"] == ["new input", "ack: new input (turn 2)"]  # appended
        assert second["state"]["status"] == "continuing"  # replaced
        third = http.post(f"{base}/user-123/invoke/", json={"input": None}).json()
        assert third["state"]["counter"] == 3 and third["state"]["messages"] == second["state"]["messages"]

        other = http.post(f"{base}/user-456/invoke/",
                          json={"input": {"messages": [], "status": "start", "counter": 0}}).json()
        assert other["state"] == {"messages": [], "status": "start", "counter": 1}  # a fresh session

        checkpoints = http.get(f"{base}/user-123/checkpoints/", params={"limit": 5}).json()["results"]
        assert len(checkpoints) == 5
        assert checkpoints[0]["checkpoint_id"] == third["checkpoint_id"]  # newest first
        assert [c["checkpoint_id"] for c in checkpoints[1:]] == [c["parent_id"] for c in checkpoints[:-1]]

        state = http.get(f"{base}/user-123/state/").json()
        assert state["state"]["status"] == "continuing" and state["next"] == []
        assert http.post(f"{base}/user-123/reset/").status_code == 204
        assert http.get(f"{base}/user-123/state/").json()["state"] == {}
        restarted = http.post(f"{base}/user-123/invoke/", json={"input": {"messages": [], "status": "fresh"}}).json()
        assert restarted["state"] == {"messages": [], "status": "fresh", "counter": 1}


def test_server_sent_events_arrive_while_the_reply_is_written(server):
    with server.client() as http:
        arrivals: list[tuple[float, str, dict]] = []
        with http.stream("POST", "/api/flows/support/sessions/sse-1/invoke/",
                         json={"input": {"messages": ["what are your opening hours?"]}},
                         headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: "):]
                elif line.startswith("data: "):
                    arrivals.append((time.monotonic(), name, json.loads(line[len("data: "):])))
        names = [name for _, name, _ in arrivals]
        assert names[0] == "run_started" and names[-1] == "run_finished"
        chunks = [(at, data) for at, name, data in arrivals if name == "chunk"]
        finished_at, _, finished = arrivals[-1]
        assert len(chunks) > 5
        assert finished_at - chunks[0][0] >= 0.1  # the first tokens came well before the end
        reply = "".join(data["chunk"] for _, data in chunks)
        assert finished["state"]["messages"][-1]["content"] == reply
        assert http.get("/api/flows/support/sessions/sse-1/state/").json()["state"] == finished["state"]


async def test_runs_on_different_sessions_overlap_in_one_worker(server):
    async with server.async_client() as http:
        async def one(session_id: str) -> None:
            response = await http.post(f"/api/flows/sleepy/sessions/{session_id}/invoke/", json={"input": {}})
            assert response.status_code == 200, response.text
            assert response.json()["state"]["turns"] == 1

        started = time.monotonic()
        await one("alone")
        single = time.monotonic() - started
        started = time.monotonic()
        await asyncio.gather(*(one(f"together-{n}") for n in range(10)))
        together = time.monotonic() - started
    assert together < 10 * single / 3, (single, together)


async def test_concurrent_invokes_on_one_session_wait_their_turn(server):
    async with server.async_client() as http:
        async def one(n: int) -> int:
            response = await http.post("/api/flows/sleepy/sessions/queue/invoke/",
                                       json={"input": {"messages": [f"m{n}"]}, "on_busy": "wait"})
            return response.status_code

        assert await asyncio.gather(*(one(n) for n in range(10))) == [200] * 10
        state = (await http.get("/api/flows/sleepy/sessions/queue/state/")).json()["state"]
    assert sorted(state["messages"]) == sorted(f"m{n}" for n in range(10))
    assert state["turns"] == 10


async def test_two_workers_on_postgresql_serve_twenty_clients(tmp_path):
    with (
        fresh_postgres_database() as database_url,
        start_server(tmp_path, database_url=database_url, workers=2) as live,
    ):
        async with live.async_client() as http:
            async def client(n: int) -> httpx.Response:
                return await http.post(f"/api/flows/sleepy/sessions/client-{n}/invoke/",
                                       json={"input": {"messages": [f"hello {n}"]}})

            responses = await asyncio.gather(*(client(n) for n in range(20)))
            assert [r.status_code for r in responses] == [200] * 20
            assert all(r.json()["state"]["messages"] == [f"hello {n}"] for n, r in enumerate(responses))
            listed = (await http.get("/api/flows/sleepy/sessions/", params={"limit": 100})).json()["results"]
            assert len(listed) == 20


def test_another_users_session_is_404_over_http(server):
    with server.client("alice") as alice, server.client("bob") as bob:
        assert alice.post("/api/flows/seed/sessions/alices/invoke/", json={"input": {"counter": 0}}).status_code == 200
        response = bob.get("/api/flows/seed/sessions/alices/state/")
        assert response.status_code == 404 and response.json()["code"] == "session_not_found"


def test_errors_are_json_over_http(server):
    with server.client() as http:
        for response in (http.get("/api/nothing"), http.get("/api/flows/nope/"),
                         http.post("/api/flows/seed/sessions/x/invoke/", content=b"{",
                                   headers={"Content-Type": "application/json"}),
                         httpx.get(server.url + "/api/flows/")):
            assert response.status_code in (400, 401, 404), response.text
            assert response.headers["content-type"].startswith("application/json")
            assert {"code", "detail"} <= set(response.json())


def test_the_docs_page_loads_its_assets_from_the_server(server):
    page = httpx.get(server.url + "/api/docs/")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assets = [part.split('"')[0] for part in page.text.split('src="')[1:]]
    assert assets and all(asset.startswith("/static/drf_spectacular_sidecar/") for asset in assets)
    for asset in assets:
        assert httpx.get(server.url + asset).status_code == 200
