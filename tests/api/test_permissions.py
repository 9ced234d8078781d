"""Who reaches what: owners, other users (404 everywhere), staff, anonymous callers, tokens."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from flows.models import Checkpoint, FlowSession
from tests.api.conftest import assert_error, client_for, invoke, session_url

#: Every route on one session: (method, route, body).
SESSION_ROUTES = [
    ("get", "", None),
    ("delete", "", None),
    ("post", "invoke", {"input": {"messages": ["mine now"]}}),
    ("get", "state", None),
    ("post", "state", {"values": {"turns": 99}}),
    ("get", "checkpoints", None),
    ("post", "reset", None),
]


@pytest.fixture
def alices_session(api):
    assert invoke(api, "chat", "private", {"input": {"messages": ["secret"]}}).status_code == 200
    return Checkpoint.objects.filter(session__session_id="private").count()


@pytest.mark.parametrize("method, route, body", SESSION_ROUTES)
def test_another_users_session_is_404_on_every_route(bobs, alices_session, method, route, body):
    response = getattr(bobs, method)(session_url("chat", "private", route), body, format="json")
    data = assert_error(response, 404, "session_not_found")
    assert "secret" not in response.content.decode() and "alice" not in str(data)
    assert Checkpoint.objects.filter(session__session_id="private").count() == alices_session
    assert FlowSession.objects.get(session_id="private").owner.username == "alice"


def test_another_users_checkpoint_and_stream_are_404(api, bobs, alices_session):
    checkpoint = api.get(session_url("chat", "private", "checkpoints")).json()["results"][0]["checkpoint_id"]
    assert_error(bobs.get(session_url("chat", "private", f"checkpoints/{checkpoint}")), 404, "session_not_found")
    streamed = invoke(bobs, "chat", "private", {"input": {"messages": ["x"]}}, HTTP_ACCEPT="text/event-stream")
    assert_error(streamed, 404, "session_not_found")


def test_another_users_sessions_are_not_listed(bobs, alices_session):
    assert bobs.get("/api/flows/chat/sessions/").json()["results"] == []


@pytest.mark.parametrize("method, route, body", SESSION_ROUTES)
def test_staff_reach_every_session(staff, alices_session, method, route, body):
    response = getattr(client_for(staff), method)(session_url("chat", "private", route), body, format="json")
    assert response.status_code in (200, 204), response.content


def test_sessions_without_an_owner_are_for_staff(api, staff):
    FlowSession.objects.create(flow_name="chat", session_id="from-a-command")
    assert_error(api.get(session_url("chat", "from-a-command")), 404, "session_not_found")
    assert_error(invoke(api, "chat", "from-a-command", {"input": {"messages": ["x"]}}), 404, "session_not_found")
    assert client_for(staff).get(session_url("chat", "from-a-command")).status_code == 200


@pytest.mark.parametrize("path", ["/api/flows/", "/api/flows/chat/sessions/", session_url("chat", "x"),
                                  session_url("chat", "x", "state")])
def test_anonymous_callers_are_refused_by_default(path):
    response = APIClient().get(path)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert_error(invoke(APIClient(), "chat", "x", {"input": {"messages": ["hi"]}}), 401, "not_authenticated")
    assert not FlowSession.objects.exists()


def test_with_token_authentication_a_missing_login_is_401(settings):
    settings.FLOWS = {**settings.FLOWS, "AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"]}
    response = APIClient().get("/api/flows/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_anonymous_access_can_be_switched_on(settings, api):
    settings.FLOWS = {**settings.FLOWS, "ANONYMOUS": True}
    anonymous = APIClient()
    assert anonymous.get("/api/flows/").status_code == 200
    data = invoke(anonymous, "chat", "guest-1", {"input": {"messages": ["hi"]}}).json()
    assert data["state"]["turns"] == 1
    assert FlowSession.objects.get(session_id="guest-1").owner is None
    assert APIClient().get(session_url("chat", "guest-1")).status_code == 200  # the id is the key
    assert_error(anonymous.get("/api/flows/chat/sessions/"), 403, "permission_denied")
    invoke(api, "chat", "alices", {"input": {"messages": ["hi"]}})
    assert_error(anonymous.get(session_url("chat", "alices")), 404, "session_not_found")


def test_token_authentication(alice):
    token = Token.objects.create(user=alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert invoke(client, "chat", "by-token", {"input": {"messages": ["hi"]}}).status_code == 200
    assert FlowSession.objects.get(session_id="by-token").owner == alice
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert_error(client.get("/api/flows/"), 401, "authentication_failed")


def test_with_session_authentication_first_a_missing_login_is_403(settings):
    # DRF's rule: 401 only when the first authentication class has a challenge to send
    settings.FLOWS = {**settings.FLOWS, "AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication", "rest_framework.authentication.TokenAuthentication"]}
    response = APIClient().get("/api/flows/")
    assert_error(response, 403, "not_authenticated")
    assert "WWW-Authenticate" not in response


def test_session_authentication_needs_the_csrf_token_for_writes(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="pw")
    assert client.get("/api/flows/").status_code == 200
    data = assert_error(invoke(client, "chat", "c", {"input": {"messages": ["hi"]}}), 403, "permission_denied")
    assert "CSRF" in data["detail"]


def test_permission_classes_come_from_the_settings(settings, api, staff):
    settings.FLOWS = {**settings.FLOWS, "PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"]}
    assert_error(api.get("/api/flows/"), 403, "permission_denied")
    assert client_for(staff).get("/api/flows/").status_code == 200
