"""POST …/invoke/: runs, turns, resume, forks, busy sessions, bad input, failing nodes."""

from __future__ import annotations

import pytest

from flows import registry
from flows.engine import run_sync
from flows.models import Checkpoint, FlowSession, Run
from tests.api.conftest import assert_error, invoke, session_url


def test_the_first_invoke_creates_the_session_for_the_caller(api, alice):
    response = invoke(api, "chat", "new-one", {"input": {"messages": ["hi"]}})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["state"] == {"messages": ["hi", "echo: hi"], "turns": 1}
    assert data["status"] == "idle" and data["interrupts"] == []
    head = Checkpoint.objects.filter(session__session_id="new-one").order_by("-seq").first()
    assert data["checkpoint_id"] == head.checkpoint_id and data["run_id"] == head.run_id
    assert FlowSession.objects.get(flow_name="chat", session_id="new-one").owner == alice


def test_turns_merge_through_the_reducers_and_null_input_continues(api):
    invoke(api, "seed", "user-123", {"input": {"messages": [], "status": "start", "counter": 0}})
    second = invoke(api, "seed", "user-123", {"input": {"messages": ["new input"], "status": "continuing"}}).json()
    assert second["state"]["messages"] == ["new input", "ack: new input (turn 2)"]
    assert second["state"]["status"] == "continuing" and second["state"]["counter"] == 2
    third = invoke(api, "seed", "user-123", {"input": None}).json()
    assert third["state"]["counter"] == 3 and third["run_id"] != second["run_id"]
    assert invoke(api, "seed", "user-123").json()["state"]["counter"] == 4  # an empty body: no input either


def test_an_interrupt_is_reported_then_resumed(api):
    paused = invoke(api, "approval", "r1", {"input": {"messages": ["refund please"]}}).json()
    assert paused["status"] == "interrupted"
    assert paused["state"]["messages"] == ["refund please", "draft ready"]
    (question,) = paused["interrupts"]
    assert question["node"] == "approve" and question["value"] == {"question": "approve the refund?"}
    assert "__interrupt__" not in paused["state"]
    done = invoke(api, "approval", "r1", {"resume": True}).json()
    assert done["status"] == "idle" and done["state"]["messages"][-1] == "approved: True"
    assert done["run_id"] == paused["run_id"]  # the same run, continued


def test_new_input_while_a_question_is_pending_keeps_both(api):
    invoke(api, "approval", "r2", {"input": {"messages": ["refund"]}})
    again = invoke(api, "approval", "r2", {"input": {"messages": ["hello?"]}}).json()
    assert again["status"] == "interrupted" and again["state"]["messages"][-1] == "hello?"
    assert invoke(api, "approval", "r2", {"resume": "yes"}).json()["state"]["messages"][-1] == "approved: yes"


def test_resume_with_nothing_pending_is_400(api):
    invoke(api, "chat", "c1", {"input": {"messages": ["hi"]}})
    data = assert_error(invoke(api, "chat", "c1", {"resume": True}), 400, "nothing_to_resume")
    assert "no pending interrupt" in data["detail"]


@pytest.mark.parametrize("body", [{"resume": True}, {"checkpoint_id": "nope"}, {"input": {"messages": "x"}}])
def test_a_refused_first_invoke_leaves_no_session_behind(api, body):
    response = invoke(api, "chat", "never-seen", body)
    assert response.status_code == 400
    assert not FlowSession.objects.filter(session_id="never-seen").exists()
    assert_error(api.get(session_url("chat", "never-seen")), 404, "session_not_found")


@pytest.mark.parametrize("flow,body,code", [("chat", {"resume": True}, "nothing_to_resume"),
                                            ("chat", {"checkpoint_id": "nope"}, "checkpoint_not_found"),
                                            ("support", {"input": {"messages": [5]}}, "invalid_input")])
def test_a_refused_invoke_leaves_no_run_behind(api, flow, body, code):
    """A call the engine refuses before it starts is not a run: left "running", it held up
    the session's next background run until recovery gave up on it. (The support flow's
    reducer refuses [5] in the engine, past the API's own checks.)"""
    first = invoke(api, flow, "refused", {"input": {"messages": ["hi"]}}).json()
    assert_error(invoke(api, flow, "refused", body), 400, code)
    runs = api.get(f"{session_url(flow, 'refused')}runs/").json()["results"]
    assert [(run["run_id"], run["status"]) for run in runs] == [(first["run_id"], "succeeded")]
    assert not Run.objects.filter(session_id="refused").exclude(status="succeeded").exists()


def test_a_misspelt_body_field_is_400_and_runs_nothing(api):
    data = assert_error(invoke(api, "chat", "typo", {"inputs": {"messages": ["hi"]}}), 400, "invalid")
    assert data["fields"] == {"inputs": ["unknown field; use input, resume, checkpoint_id, on_busy"]}
    assert not FlowSession.objects.filter(session_id="typo").exists()


def test_checkpoint_id_forks_from_an_earlier_checkpoint(api):
    first = invoke(api, "chat", "fork", {"input": {"messages": ["a"]}}).json()
    invoke(api, "chat", "fork", {"input": {"messages": ["b"]}})
    forked = invoke(api, "chat", "fork", {"input": {"messages": ["c"]}, "checkpoint_id": first["checkpoint_id"]}).json()
    assert forked["state"]["messages"] == ["a", "echo: a", "c", "echo: c"]
    history = api.get(session_url("chat", "fork", "checkpoints") + "?limit=100").json()["results"]
    assert first["checkpoint_id"] in [c["checkpoint_id"] for c in history]


def test_an_unknown_checkpoint_id_is_400_naming_the_field(api):
    invoke(api, "chat", "c2", {"input": {"messages": ["hi"]}})
    data = assert_error(invoke(api, "chat", "c2", {"checkpoint_id": "nope"}), 400, "checkpoint_not_found")
    assert "checkpoint_id" in data["fields"]


def test_a_busy_session_with_reject_is_409_with_retry_after(api):
    invoke(api, "chat", "busy", {"input": {"messages": ["hi"]}})
    checkpointer = registry.get_checkpointer("chat")
    lease = run_sync(checkpointer.aacquire("busy"))  # another worker holds the session
    try:
        response = invoke(api, "chat", "busy", {"input": {"messages": ["again"]}, "on_busy": "reject"})
        data = assert_error(response, 409, "session_busy")
        assert response["Retry-After"] == "1" and "busy" in data["detail"]
    finally:
        run_sync(checkpointer.arelease(lease))
    assert invoke(api, "chat", "busy", {"input": {"messages": ["again"]}}).json()["state"]["turns"] == 2


def test_on_busy_must_be_a_strategy_and_the_error_lists_them(api):
    data = assert_error(invoke(api, "chat", "c3", {"on_busy": "queue"}), 400, "invalid")
    assert data["fields"]["on_busy"] == ['"queue" is not a strategy: use wait, reject, interrupt, rollback']


@pytest.mark.parametrize(
    "flow, body, field",
    [
        ("seed", {"input": {"messages": None}}, "input.messages"),
        ("seed", {"input": {"messages": "abc"}}, "input.messages"),
        ("seed", {"input": {"counter": "many"}}, "input.counter"),
        ("support", {"input": {"turns": "many"}}, "input.turns"),
        ("chat", {"input": {"nope": 1}}, "input.nope"),
        ("chat", {"input": {"when": "not a date"}}, "input.when"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_leaves_the_session_usable(api, flow, body, field):
    invoke(api, flow, "s", {"input": {"messages": ["first"]}} if flow != "seed" else
           {"input": {"messages": [], "status": "s", "counter": 0}})
    before = Checkpoint.objects.filter(session__session_id="s", session__flow_name=flow).count()
    data = assert_error(invoke(api, flow, "s", body), 400, "invalid_input")
    assert list(data["fields"]) == [field], data
    assert Checkpoint.objects.filter(session__session_id="s", session__flow_name=flow).count() == before
    assert invoke(api, flow, "s", {"input": {"messages": ["fine now"]}}).status_code == 200


def test_a_bad_first_input_stores_nothing(api):
    assert_error(invoke(api, "support", "fresh", {"input": {"turns": "many"}}), 400, "invalid_input")
    assert not Checkpoint.objects.filter(session__session_id="fresh").exists()
    state = invoke(api, "support", "fresh", {"input": {"messages": ["where is my order"]}}).json()["state"]
    assert state["turns"] == 1 and state["intent"] == "order"


def test_json_input_is_converted_by_the_annotations(api):
    data = invoke(api, "chat", "dated", {"input": {"messages": ["x"], "when": "2026-12-01T10:00:00+00:00"}}).json()
    assert data["state"]["when"] == "2026-12-01T10:00:00Z"
    state = registry.get_flow("chat").sync.get_state("dated")
    assert state["when"].year == 2026 and state["when"].tzinfo is not None


def test_a_failing_node_is_500_naming_it_and_the_session_stays_resumable(api):
    response = invoke(api, "chat", "boom", {"input": {"messages": ["x"], "fail": True}})
    data = assert_error(response, 500, "node_failed")
    assert data["node"] == "reply" and data["error_type"] == "RuntimeError" and data["session_status"] == "failed"
    assert "asked to fail" in data["detail"] and "Traceback" not in data["detail"]
    resumed = invoke(api, "chat", "boom", {"input": {"fail": False}}).json()
    assert resumed["status"] == "idle" and resumed["state"]["messages"] == ["x", "echo: x"]
    assert api.get(session_url("chat", "boom")).json()["status"] == "idle"


def test_sites_with_atomic_requests_can_run_flows(api, settings):
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    try:
        assert invoke(api, "chat", "atomic", {"input": {"messages": ["hi"]}}).status_code == 200
        assert api.get(session_url("chat", "atomic", "state")).json()["state"]["turns"] == 1
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False
