"""Background runs across processes: two uvicorn workers and two task workers on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.backends import service_url
from tests.runs.live import Watcher, events, runs_url, start, until, wait
from tests.servers import fresh_postgres_database, start_server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("cluster")
    env = {"FLOWS_TEST_STEP_SECONDS": "0.4", "FLOWS_DEMO_TOKEN_DELAY": "0"}
    with fresh_postgres_database() as database, start_server(work, database_url=database, workers=2,
                                                            task_workers=2, env=env) as live:
        yield live


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory):
    """The same, with a Redis: the channel layer and the runs' event log in Redis streams."""
    work = tmp_path_factory.mktemp("redis-cluster")
    env = {"FLOWS_TEST_STEP_SECONDS": "0.4", "FLOWS_DEMO_TOKEN_DELAY": "0", "REDIS_URL": service_url("redis")}
    with fresh_postgres_database() as database, start_server(work, database_url=database, workers=2,
                                                            task_workers=2, env=env) as live:
        yield live


@pytest.fixture(params=["database log", "redis log"])
def either_log(request):
    """Each of the event logs a deployment may have."""
    return request.getfixturevalue("cluster" if request.param == "database log" else "redis_cluster")


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_queued_runs_go_in_arrival_order_and_none_is_lost(cluster):
    with cluster.client() as http:
        ids = [start(http, "sleepy", "queue", {"input": {"messages": [f"m{n}"]}})["run_id"] for n in range(5)]
        finished = [wait(http, "sleepy", "queue", run_id) for run_id in ids]
    assert [run["status"] for run in finished] == ["succeeded"] * 5
    assert finished[-1]["state"] == {"messages": [f"m{n}" for n in range(5)], "turns": 5}
    starts = [when(run["started_at"]) for run in finished]
    assert starts == sorted(starts)
    assert len({run["worker"] for run in finished}) >= 1


def test_interrupt_stops_the_running_run_and_the_new_input_runs_on_its_work(cluster):
    with cluster.client() as http:
        first = start(http, "steps", "interrupt", {"input": {"messages": ["first"]}})
        until(events(http, runs_url("steps", "interrupt", f"{first['run_id']}/stream/")), "node_finished", "a")
        second = start(http, "steps", "interrupt", {"input": {"messages": ["second"]}, "on_busy": "interrupt"})
        stopped = wait(http, "steps", "interrupt", first["run_id"])
        done = wait(http, "steps", "interrupt", second["run_id"])
    assert stopped["status"] == "cancelled" and "interrupt" in stopped["error"]
    assert when(stopped["finished_at"]) - when(second["created_at"]) < dt.timedelta(seconds=1)
    assert done["status"] == "succeeded"
    messages = done["state"]["messages"]
    cut = messages.index("second")
    # what the stopped run checkpointed stays ("a", and "b" if it finished before the stop arrived) ...
    assert messages[:cut] in (["first", "a"], ["first", "a", "b"])
    # ... and the new input ran the whole flow on top of it
    assert messages[cut:] == ["second", "a", "b", "c", "d"]


def test_rollback_discards_the_stopped_runs_checkpoints(cluster):
    with cluster.client() as http:
        before = wait(http, "steps", "rollback",
                      start(http, "steps", "rollback", {"input": {"messages": ["zero"]}})["run_id"])
        assert before["state"]["messages"] == ["zero", "a", "b", "c", "d"]
        doomed = start(http, "steps", "rollback", {"input": {"messages": ["doomed"]}})
        until(events(http, runs_url("steps", "rollback", f"{doomed['run_id']}/stream/")), "node_finished", "a")
        fresh = start(http, "steps", "rollback", {"input": {"messages": ["fresh"]}, "on_busy": "rollback"})
        stopped = wait(http, "steps", "rollback", doomed["run_id"])
        done = wait(http, "steps", "rollback", fresh["run_id"])
        branch = http.get("/api/flows/steps/sessions/rollback/checkpoints/", params={"limit": 100}).json()["results"]
    assert stopped["status"] == "cancelled"
    assert done["state"]["messages"] == ["zero", "a", "b", "c", "d", "fresh", "a", "b", "c", "d"]
    assert doomed["run_id"] not in {checkpoint["run_id"] for checkpoint in branch}


def test_a_dropped_stream_resumes_after_last_event_id_exactly_once(either_log):
    with either_log.client() as http:
        run = start(http, "steps", "replay", {"input": {"messages": ["go"]}})
        url = runs_url("steps", "replay", f"{run['run_id']}/stream/")
        first_part = until(events(http, url), "node_finished", "b")  # then the connection is dropped
        rest = list(events(http, url, headers={"Last-Event-ID": str(first_part[-1][0])}))
        everything = list(events(http, url))  # the whole run, replayed from the start
    received = [event_id for event_id, _, _ in first_part + rest]
    assert received == [event_id for event_id, _, _ in everything] == list(range(1, len(everything) + 1))
    assert rest[-1][1] == "run_finished" and rest[-1][2]["state"]["messages"] == ["go", "a", "b", "c", "d"]
    assert {e[2]["event"] for e in everything} >= {"run_started", "node_started", "chunk", "node_finished"}


def test_the_session_watcher_sees_runs_started_anywhere(either_log):
    with either_log.client() as http, either_log.client() as watching:
        http.post("/api/flows/sleepy/sessions/", json={"session_id": "watched"})
        watcher = Watcher(watching, "/api/flows/sleepy/sessions/watched/stream/")
        http.post("/api/flows/sleepy/sessions/watched/invoke/", json={"input": {"messages": ["by invoke"]}})
        seen = watcher.until("run_finished")
        background = start(http, "sleepy", "watched", {"input": {"messages": ["in the background"]}})
        seen += watcher.until("run_finished")
        watcher.close()
    finished = [data for _, name, data in seen if name == "run_finished"]
    assert [state["state"]["messages"][-1] for state in finished] == ["by invoke", "in the background"]
    assert finished[1]["run_id"] == background["run_id"]
    ids = [event_id for event_id, _, _ in seen]
    assert ids == sorted(ids)
