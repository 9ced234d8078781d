"""Background runs: created with 202, executed by a worker, recorded with their events."""

from __future__ import annotations

import json

from flows.engine import run_sync
from flows.models import Run, RunEvent
from flows.runs.execution import execute
from tests.api.conftest import assert_error, invoke, session_url


def runs_url(flow: str, session_id: str, tail: str = "") -> str:
    return session_url(flow, session_id, "runs") + tail


def start(api, flow: str, session_id: str, body: dict | None = None):
    return api.post(runs_url(flow, session_id), body or {}, format="json")


def work() -> None:
    """What a worker does: execute every pending run, oldest first."""
    for run_id in Run.objects.filter(status="pending").order_by("pk").values_list("run_id", flat=True):
        run_sync(execute(run_id))


def test_a_background_run_is_accepted_then_executed(api, alice):
    response = start(api, "chat", "bg", {"input": {"messages": ["hi"]}})
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status"] == "pending" and data["origin"] == "background"
    assert response["Location"].endswith(runs_url("chat", "bg", f"{data['run_id']}/"))
    work()
    done = api.get(runs_url("chat", "bg", f"{data['run_id']}/")).json()
    assert done["status"] == "succeeded" and done["finished_at"] and done["engine_run_id"] == data["run_id"]
    assert done["checkpoint_id"] == api.get(session_url("chat", "bg", "state")).json()["checkpoint_id"]
    events = list(RunEvent.objects.filter(run__run_id=data["run_id"]).order_by("seq").values_list("seq", "event"))
    assert events == [(1, "run_started"), (2, "node_started"), (3, "node_finished"), (4, "run_finished")]
    assert done["last_event_id"] == 4
    assert json.loads(RunEvent.objects.get(run__run_id=data["run_id"], seq=4).data)["state"]["turns"] == 1


def test_every_call_is_recorded_however_it_was_started(api):
    invoke(api, "chat", "mixed", {"input": {"messages": ["by invoke"]}})
    from flows import registry

    registry.get_flow("chat").sync.invoke({"messages": ["by a script"]}, session_id="mixed")
    listed = api.get(runs_url("chat", "mixed")).json()["results"]
    assert [run["origin"] for run in listed] == ["other", "api"]
    assert all(run["status"] == "succeeded" and run["last_event_id"] == 4 for run in listed)


def test_an_interrupted_run_then_its_answer(api):
    first = start(api, "approval", "q", {"input": {"messages": ["refund"]}}).json()
    work()
    paused = api.get(runs_url("approval", "q", f"{first['run_id']}/")).json()
    assert paused["status"] == "interrupted" and paused["interrupts"][0]["node"] == "approve"
    second = start(api, "approval", "q", {"resume": True}).json()
    work()
    done = api.get(runs_url("approval", "q", f"{second['run_id']}/")).json()
    assert done["status"] == "succeeded" and done["engine_run_id"] == first["run_id"]  # the same engine run


def test_a_failing_run_is_failed_with_its_error(api):
    run = start(api, "chat", "f", {"input": {"messages": ["x"], "fail": True}}).json()
    work()
    failed = api.get(runs_url("chat", "f", f"{run['run_id']}/")).json()
    assert failed["status"] == "failed" and "asked to fail" in failed["error"]


def test_reject_refuses_while_another_run_is_pending(api):
    start(api, "chat", "busy", {"input": {"messages": ["one"]}})
    response = start(api, "chat", "busy", {"input": {"messages": ["two"]}, "on_busy": "reject"})
    assert_error(response, 409, "session_busy")
    assert response["Retry-After"] == "1"


def test_invoke_with_reject_refuses_while_a_background_run_is_pending(api):
    start(api, "chat", "queued", {"input": {"messages": ["one"]}})
    refused = api.post(session_url("chat", "queued", "invoke"), {"input": {"messages": ["two"]}, "on_busy": "reject"},
                       format="json")
    assert_error(refused, 409, "session_busy")
    assert Run.objects.filter(session_id="queued").count() == 1  # the refused call left no run behind


def test_interrupt_asks_the_runs_ahead_to_stop_when_it_is_created(api):
    """Not when a worker gets to it: the only worker may be the one executing the run ahead."""
    Run.objects.create(run_id="executing", flow_name="chat", session_id="ahead", status="running",
                       origin="background")
    waiting = start(api, "chat", "ahead", {"input": {"messages": ["next"]}}).json()
    start(api, "chat", "ahead", {"input": {"messages": ["now"]}, "on_busy": "interrupt"})
    rows = dict(Run.objects.filter(session_id="ahead").values_list("run_id", "stop_requested"))
    assert rows["executing"] == "interrupt"
    cancelled = Run.objects.get(run_id=waiting["run_id"])
    assert cancelled.status == "cancelled" and cancelled.error == "stopped by a newer run (interrupt) before it started"
    last = RunEvent.objects.filter(run=cancelled).order_by("-seq").first()
    assert last.event == "run_failed"  # its stream ends with the reason too


def test_runs_wait_their_turn_in_arrival_order(api):
    ids = [start(api, "chat", "queue", {"input": {"messages": [f"m{n}"]}}).json()["run_id"] for n in range(5)]
    work()
    state = api.get(session_url("chat", "queue", "state")).json()["state"]
    assert state["messages"] == [x for n in range(5) for x in (f"m{n}", f"echo: m{n}")]
    assert list(Run.objects.filter(run_id__in=ids).values_list("status", flat=True).distinct()) == ["succeeded"]


def test_cancelling_a_pending_run(api):
    run = start(api, "chat", "c", {"input": {"messages": ["x"]}}).json()
    response = api.post(runs_url("chat", "c", f"{run['run_id']}/cancel/"), {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    work()
    assert api.get(session_url("chat", "c", "state")).json()["state"] == {}
    assert_error(api.post(runs_url("chat", "c", f"{run['run_id']}/cancel/"), {}, format="json"), 409, "run_ended")


def test_another_users_runs_are_404(api, bobs):
    run = start(api, "chat", "mine", {"input": {"messages": ["x"]}}).json()
    for url in (runs_url("chat", "mine"), runs_url("chat", "mine", f"{run['run_id']}/")):
        assert_error(bobs.get(url), 404, "session_not_found")
    assert_error(start(bobs, "chat", "mine", {"input": {"messages": ["y"]}}), 404, "session_not_found")
    assert_error(bobs.post(runs_url("chat", "mine", f"{run['run_id']}/cancel/"), {}, format="json"), 404,
                 "session_not_found")


def test_an_unknown_run_is_404(api):
    invoke(api, "chat", "s", {"input": {"messages": ["x"]}})
    assert_error(api.get(runs_url("chat", "s", "nope/")), 404, "run_not_found")


ENQUEUED: list[tuple[str, float]] = []


def enqueue_here(run_id: str, delay: float) -> None:
    """``FLOWS["RUNS_ENQUEUE"]`` of a site with a queue of its own."""
    ENQUEUED.append((run_id, delay))


def test_a_site_may_hand_runs_to_a_queue_of_its_own(api, settings):
    from django_tasks_db.models import DBTaskResult

    settings.FLOWS = {**settings.FLOWS, "RUNS_ENQUEUE": "tests.runs.test_background.enqueue_here"}
    ENQUEUED.clear()
    run = start(api, "chat", "own-queue", {"input": {"messages": ["hi"]}}).json()
    assert [(run["run_id"], 0.0)] == ENQUEUED and not DBTaskResult.objects.exists()
    assert run_sync(execute(run["run_id"])) == []  # what the site's job calls
    assert Run.objects.get(run_id=run["run_id"]).status == "succeeded"


def test_a_run_behind_one_no_worker_started_goes_back_to_the_queue(api):
    first = start(api, "chat", "behind", {"input": {"messages": ["one"]}}).json()
    second = start(api, "chat", "behind", {"input": {"messages": ["two"]}}).json()
    assert run_sync(execute(second["run_id"])) == [(second["run_id"], 0.5)]  # try again soon
    assert Run.objects.get(run_id=second["run_id"]).status == "pending"
    work()
    assert [Run.objects.get(run_id=r["run_id"]).status for r in (first, second)] == ["succeeded", "succeeded"]
