"""…/state/ (read at the head or a checkpoint; write through the reducers) and …/reset/."""

from __future__ import annotations

from flows.models import Checkpoint, FlowSession
from tests.api.conftest import assert_error, invoke, session_url


def test_the_state_at_the_head_and_at_a_checkpoint(api):
    first = invoke(api, "chat", "s", {"input": {"messages": ["a"]}}).json()
    invoke(api, "chat", "s", {"input": {"messages": ["b"]}})
    head = api.get(session_url("chat", "s", "state")).json()
    assert head["state"] == {"messages": ["a", "echo: a", "b", "echo: b"], "turns": 2}
    assert head["next"] == [] and head["interrupts"] == []
    then = api.get(session_url("chat", "s", "state") + f"?checkpoint_id={first['checkpoint_id']}").json()
    written = api.get(session_url("chat", "s", f"checkpoints/{first['checkpoint_id']}")).json()
    assert then == {"state": first["state"], "checkpoint_id": first["checkpoint_id"], "run_id": first["run_id"],
                    "step": written["step"], "next": [], "interrupts": []}


def test_a_session_with_no_run_yet_has_an_empty_state(api):
    api.post("/api/flows/chat/sessions/", {"session_id": "empty"}, format="json")
    assert api.get(session_url("chat", "empty", "state")).json() == {
        "state": {}, "checkpoint_id": None, "run_id": None, "step": None, "next": [], "interrupts": []}


def test_a_pending_question_shows_in_the_state(api):
    invoke(api, "approval", "q", {"input": {"messages": ["x"]}})
    data = api.get(session_url("approval", "q", "state")).json()
    assert data["next"] == ["approve"] and data["interrupts"][0]["node"] == "approve"
    assert "__interrupt__" not in data["state"]


def test_an_unknown_checkpoint_is_400(api):
    invoke(api, "chat", "s", {"input": {"messages": ["a"]}})
    data = assert_error(api.get(session_url("chat", "s", "state") + "?checkpoint_id=zzz"), 400, "checkpoint_not_found")
    assert data["fields"] == {"checkpoint_id": [data["detail"]]}


def test_updating_the_state_writes_a_checkpoint_through_the_reducers(api):
    invoke(api, "chat", "s", {"input": {"messages": ["a"]}})
    response = api.post(session_url("chat", "s", "state"), {"values": {"messages": ["edited"], "turns": 10}},
                        format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["state"] == {"messages": ["a", "echo: a", "edited"], "turns": 10}
    assert data == api.get(session_url("chat", "s", "state")).json()
    head = Checkpoint.objects.filter(session__session_id="s").order_by("-seq").first()
    assert head.node == "__update__" and head.checkpoint_id == data["checkpoint_id"]


def test_updating_as_a_node_continues_after_it(api):
    invoke(api, "approval", "q", {"input": {"messages": ["x"]}})
    data = api.post(session_url("approval", "q", "state"), {"values": {"messages": ["by hand"]}, "as_node": "approve"},
                    format="json").json()
    assert data["interrupts"] == [] and data["next"] == []
    assert data["state"]["messages"][-1] == "by hand"


def test_bad_updates_are_400_and_write_nothing(api):
    invoke(api, "chat", "s", {"input": {"messages": ["a"]}})
    count = Checkpoint.objects.filter(session__session_id="s").count()
    url = session_url("chat", "s", "state")
    cases = [
        ({"values": {"turns": "ten"}}, "invalid_input", "values.turns"),
        ({"values": {"nope": 1}}, "invalid_input", "values.nope"),
        ({"values": {"turns": 1}, "as_node": "nope"}, "invalid", "as_node"),
        ({}, "invalid", "values"),
        ({"values": [1, 2]}, "invalid", "values"),
    ]
    for body, code, field in cases:
        data = assert_error(api.post(url, body, format="json"), 400, code)
        assert field in data["fields"], (body, data)
        assert "the input" not in data["detail"], data  # the values, as the client named them
    assert Checkpoint.objects.filter(session__session_id="s").count() == count


def test_reset_clears_the_checkpoints_and_keeps_the_session(api, alice):
    invoke(api, "chat", "s", {"input": {"messages": ["a"], "fail": True}})
    response = api.post(session_url("chat", "s", "reset"))
    assert response.status_code == 204 and response.content == b""
    assert not Checkpoint.objects.filter(session__session_id="s").exists()
    row = FlowSession.objects.get(session_id="s")
    assert row.owner == alice and row.status == "idle" and row.last_error == ""
    assert api.get(session_url("chat", "s", "state")).json()["state"] == {}
    assert invoke(api, "chat", "s", {"input": {"messages": ["fresh"]}}).json()["state"] == {
        "messages": ["fresh", "echo: fresh"], "turns": 1}
