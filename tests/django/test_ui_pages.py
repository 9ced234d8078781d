"""flows.ui's page shells: who may open them, and what they hand the page's script."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def flows_registry(settings):
    settings.FLOWS = {"REGISTRY": {"seed": "project.flows.seed.build_seed_flow"}}


def config_of(response) -> dict:
    html = response.content.decode()
    found = re.search(r'<script id="flows-config" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None, "the page has no flows-config"
    return json.loads(found[1])


def test_the_pages_need_a_signed_in_user(client):
    response = client.get(reverse("flows-ui:home"))
    assert response.status_code == 302 and "login" in response.url


def test_the_home_lists_the_flows_with_their_graphs(admin_client):
    response = admin_client.get(reverse("flows-ui:home"))
    html = response.content.decode()
    assert 'data-flow="seed"' in html and 'data-node="count"' in html
    config = config_of(response)
    assert config["api"] == "/api/" and config["csrf_header"].lower() == "x-csrftoken" and config["csrf_token"]


def test_a_conversation_page_hands_the_script_its_socket_and_api(admin_client):
    response = admin_client.get(reverse("flows-ui:conversation", args=["seed", "s.1:a"]))
    assert response.status_code == 200
    config = config_of(response)
    assert config["socket"] == "ws/flows/seed/sessions/s.1%3Aa/"
    assert (config["flow"], config["session_id"], config["chat"]) == ("seed", "s.1:a", True)
    assert config["messages_as"] == "text"  # the seed flow's messages are strings


def test_the_page_sends_messages_as_the_field_declares_them():
    from typing import Annotated, Any, TypedDict

    from flows.engine import FlowEngine
    from flows.ui.views import messages_as

    def engine(annotation):
        state = TypedDict("State", {"messages": annotation})  # noqa: UP013 (the annotation varies)
        return FlowEngine(state)

    assert messages_as(engine(Annotated[list[str], lambda a, b: a + b])) == "text"
    assert messages_as(engine(Annotated[list[dict], lambda a, b: a + b])) == "dict"
    assert messages_as(engine(list[dict[str, Any]])) == "dict"
    assert messages_as(engine(Annotated[list, lambda a, b: a + b])) is None  # the page follows the stored ones
    assert messages_as(engine(list[Any])) is None
    assert messages_as(engine(list[str] | None)) == "text"
    assert messages_as(engine(list[list[str]])) == "dict"  # not strings: whatever the items hold


@pytest.mark.parametrize("flow, session_id", [("nope", "s1"), ("seed", "has#hash"), ("seed", "x" * 256)])
def test_an_unknown_flow_or_an_invalid_session_id_is_404(admin_client, flow, session_id):
    response = admin_client.get(f"/flows/{flow}/sessions/{session_id.replace('#', '%23')}/")
    assert response.status_code == 404
