"""The API tests: registered flows, users, and clients signed in as them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from flows import registry
from tests.servers import start_server

FLOWS = {
    "chat": "tests.api.flows.chat_flow",
    "streaming": "tests.api.flows.streaming_flow",
    "approval": "tests.django.flows.approval_flow",
    "sloppy": "tests.api.flows.sloppy_flow",
    "seed": "project.flows.seed.build_seed_flow",
    "support": "project.flows.support.build_support_flow",
}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The demo under uvicorn: one worker on SQLite, replies streamed with the demo's token delay."""
    with start_server(tmp_path_factory.mktemp("live"), env={"FLOWS_DEMO_TOKEN_DELAY": "0.03"}) as live:
        yield live


@pytest.fixture(autouse=True)
def flows_registry(settings, monkeypatch, transactional_db):
    """Every API test: these flows, real transactions (flows commit on their own connections)."""
    monkeypatch.setenv("FLOWS_DEMO_TOKEN_DELAY", "0")
    settings.FLOWS = {"REGISTRY": FLOWS, "THROTTLE_RATES": {"invoke": "1000/minute"}}
    registry.clear_cache()
    yield
    registry.clear_cache()


def make_user(name: str, **extra):
    return get_user_model().objects.create_user(name, password="pw", **extra)


@pytest.fixture
def alice():
    return make_user("alice")


@pytest.fixture
def bob():
    return make_user("bob")


@pytest.fixture
def staff():
    return make_user("staff", is_staff=True)


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def api(alice) -> APIClient:
    """Alice's client."""
    return client_for(alice)


@pytest.fixture
def bobs(bob) -> APIClient:
    return client_for(bob)


def session_url(flow: str, session_id: str, route: str = "") -> str:
    return f"/api/flows/{flow}/sessions/{session_id}/" + (f"{route}/" if route else "")


def invoke(client, flow: str, session_id: str, body: dict | None = None, **extra):
    return client.post(session_url(flow, session_id, "invoke"), body or {}, format="json", **extra)


def assert_error(response, status: int, code: str) -> dict:
    """The response is a JSON error with this status and code; returns its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    data = response.json()
    assert data["code"] == code, data
    assert isinstance(data["detail"], str) and data["detail"], data
    return data
