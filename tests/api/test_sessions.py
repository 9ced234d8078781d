"""Sessions: list (newest first, cursor pages, status filter), create, get, delete."""

from __future__ import annotations

import pytest

from flows.models import Checkpoint, FlowSession
from tests.api.conftest import assert_error, invoke, session_url


def test_creating_a_session_with_an_id(api, alice):
    response = api.post("/api/flows/chat/sessions/", {"session_id": "mine-1"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["flow"] == "chat" and data["session_id"] == "mine-1"
    assert data["status"] == "idle" and data["next"] == [] and data["interrupts"] == []
    assert data["checkpoint_id"] is None and data["created_at"] and data["updated_at"]
    assert response["Location"] == "http://testserver" + session_url("chat", "mine-1")
    assert FlowSession.objects.get(flow_name="chat", session_id="mine-1").owner == alice
    assert api.get(session_url("chat", "mine-1")).json() == data


def test_without_an_id_the_server_picks_a_random_one(api):
    first = api.post("/api/flows/chat/sessions/", {}, format="json").json()["session_id"]
    second = api.post("/api/flows/chat/sessions/", format="json").json()["session_id"]
    assert first != second and len(first) == 32


def test_an_id_that_is_taken_is_409_without_owner_details(api, bobs):
    api.post("/api/flows/chat/sessions/", {"session_id": "taken"}, format="json")
    for client in (api, bobs):
        data = assert_error(client.post("/api/flows/chat/sessions/", {"session_id": "taken"}, format="json"),
                            409, "session_exists")
        assert "alice" not in str(data)
    assert FlowSession.objects.get(session_id="taken").owner.username == "alice"


@pytest.mark.parametrize("session_id", ["no spaces", "a\n", " a ", 7, None])
def test_an_invalid_id_is_400_naming_the_field(api, session_id):
    data = assert_error(api.post("/api/flows/chat/sessions/", {"session_id": session_id}, format="json"),
                        400, "invalid")
    assert "session_id" in data["fields"]
    assert not FlowSession.objects.exists()


def test_a_session_after_runs(api):
    invoke(api, "chat", "s1", {"input": {"messages": ["hi"]}})
    data = api.get(session_url("chat", "s1")).json()
    assert data["status"] == "idle" and data["next"] == []
    head = Checkpoint.objects.filter(session__session_id="s1").order_by("-seq").first()
    assert data["checkpoint_id"] == head.checkpoint_id


def test_an_interrupted_session_shows_its_question(api):
    invoke(api, "approval", "a1", {"input": {"messages": ["refund"]}})
    data = api.get(session_url("approval", "a1")).json()
    assert data["status"] == "interrupted" and data["next"] == ["approve"]
    assert data["interrupts"][0]["value"] == {"question": "approve the refund?"}


def test_a_failed_session_says_why(api):
    assert invoke(api, "chat", "f1", {"input": {"messages": ["x"], "fail": True}}).status_code == 500
    data = api.get(session_url("chat", "f1")).json()
    assert data["status"] == "failed" and data["next"] == ["reply"]
    assert data["last_error"] == "NodeError: node 'reply' failed on attempt 1/1: RuntimeError: asked to fail"


def test_the_list_holds_the_callers_sessions_newest_activity_first(api, bobs):
    for name in ("old", "middle", "new"):
        invoke(api, "chat", name, {"input": {"messages": [name]}})
    invoke(bobs, "chat", "bobs", {"input": {"messages": ["hi"]}})
    invoke(api, "seed", "other-flow", {"input": {"messages": [], "status": "s", "counter": 0}})
    invoke(api, "chat", "old", {"input": {"messages": ["again"]}})  # now the newest activity
    page = api.get("/api/flows/chat/sessions/").json()
    assert [s["session_id"] for s in page["results"]] == ["old", "new", "middle"]
    assert page["next"] is None and page["previous"] is None
    assert set(page["results"][0]) == {"flow", "session_id", "status", "created_at", "updated_at"}


def test_the_list_is_cursor_paginated(api):
    for n in range(5):
        api.post("/api/flows/chat/sessions/", {"session_id": f"s{n}"}, format="json")
    seen, url = [], "/api/flows/chat/sessions/?limit=2"
    while url:
        page = api.get(url).json()
        assert len(page["results"]) <= 2
        seen += [s["session_id"] for s in page["results"]]
        url = page["next"]
    assert seen == ["s4", "s3", "s2", "s1", "s0"]
    back = api.get(page["previous"]).json()
    assert [s["session_id"] for s in back["results"]] == ["s2", "s1"]


def test_the_list_filters_by_status(api):
    invoke(api, "approval", "waiting", {"input": {"messages": ["x"]}})
    api.post("/api/flows/approval/sessions/", {"session_id": "fresh"}, format="json")
    waiting = api.get("/api/flows/approval/sessions/?status=interrupted").json()["results"]
    assert [s["session_id"] for s in waiting] == ["waiting"]
    idle = api.get("/api/flows/approval/sessions/?status=idle").json()["results"]
    assert [s["session_id"] for s in idle] == ["fresh"]
    data = assert_error(api.get("/api/flows/approval/sessions/?status=sleeping"), 400, "invalid")
    assert data["fields"] == {"status": ["sleeping"]}


def test_bad_page_sizes_and_cursors_are_400(api):
    for limit in ("0", "101", "x", "-1", "²", "1²", "9" * 5000):
        assert assert_error(api.get(f"/api/flows/chat/sessions/?limit={limit}"), 400, "invalid")["fields"]["limit"]
    data = assert_error(api.get("/api/flows/chat/sessions/?cursor=garbage"), 400, "invalid")
    assert data["fields"] == {"cursor": ["invalid cursor"]}


def test_staff_list_every_session(api, bobs, staff):
    from tests.api.conftest import client_for

    invoke(api, "chat", "a", {"input": {"messages": ["hi"]}})
    invoke(bobs, "chat", "b", {"input": {"messages": ["hi"]}})
    listed = client_for(staff).get("/api/flows/chat/sessions/").json()["results"]
    assert {s["session_id"] for s in listed} == {"a", "b"}


def test_deleting_removes_the_session_and_its_checkpoints(api):
    invoke(api, "chat", "gone", {"input": {"messages": ["hi"]}})
    assert Checkpoint.objects.filter(session__session_id="gone").exists()
    response = api.delete(session_url("chat", "gone"))
    assert response.status_code == 204 and response.content == b""
    assert not FlowSession.objects.filter(session_id="gone").exists()
    assert not Checkpoint.objects.filter(session__session_id="gone").exists()
    assert_error(api.get(session_url("chat", "gone")), 404, "session_not_found")
    # the id is free again, and starts fresh
    assert invoke(api, "chat", "gone", {"input": {"messages": ["new"]}}).json()["state"]["turns"] == 1


def test_an_unknown_session_is_404(api):
    for method, route in (("get", ""), ("delete", ""), ("get", "state"), ("post", "state"), ("post", "reset"),
                          ("get", "checkpoints"), ("get", "checkpoints/abc")):
        body = {"values": {}} if method == "post" else None
        response = getattr(api, method)(session_url("chat", "nobody", route), body, format="json")
        assert_error(response, 404, "session_not_found")


def test_with_another_store_the_row_keeps_owner_and_status(api, alice, settings):
    from flows import registry

    settings.FLOWS = {**settings.FLOWS, "CHECKPOINTER": {"BACKEND": "memory"}}
    registry.clear_cache()
    invoke(api, "approval", "elsewhere", {"input": {"messages": ["x"]}})
    row = FlowSession.objects.get(session_id="elsewhere")
    assert row.owner == alice and row.status == "interrupted" and not Checkpoint.objects.exists()
    assert api.get("/api/flows/approval/sessions/?status=interrupted").json()["results"][0]["session_id"] == "elsewhere"
    invoke(api, "approval", "elsewhere", {"resume": True})
    assert FlowSession.objects.get(session_id="elsewhere").status == "idle"
    invoke(api, "chat", "broken", {"input": {"messages": ["x"], "fail": True}})
    assert FlowSession.objects.get(session_id="broken").status == "failed"
    assert api.get(session_url("chat", "broken")).json()["status"] == "failed"
    api.post(session_url("chat", "broken", "reset"))
    assert FlowSession.objects.get(session_id="broken").status == "idle"


def test_a_session_only_the_store_knows_is_staffs(api, staff, settings):
    from flows import registry
    from tests.api.conftest import client_for

    settings.FLOWS = {**settings.FLOWS, "CHECKPOINTER": {"BACKEND": "memory"}}
    registry.clear_cache()
    registry.get_flow("chat").sync.invoke({"messages": ["from a script"]}, session_id="scripted")
    assert_error(api.get(session_url("chat", "scripted")), 404, "session_not_found")
    assert_error(invoke(api, "chat", "scripted", {"input": {"messages": ["mine?"]}}), 404, "session_not_found")
    data = client_for(staff).get(session_url("chat", "scripted")).json()
    assert data["status"] == "idle" and data["checkpoint_id"]
    assert invoke(client_for(staff), "chat", "scripted", {"input": {"messages": ["hi"]}}).status_code == 200
    assert FlowSession.objects.get(session_id="scripted").owner is None  # not claimed by whoever came first
