"""Every error under /api/ is JSON with a stable code and a detail, and the right status."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from flows import registry
from tests.api.conftest import FLOWS, assert_error, invoke, session_url

INVOKE = session_url("chat", "s", "invoke")


def test_invalid_json_is_400(api):
    data = assert_error(api.post(INVOKE, b'{"input": ', content_type="application/json"), 400, "parse_error")
    assert data["detail"].startswith("JSON parse error")
    assert_error(api.post(INVOKE, b'{"input": {"turns": NaN}}', content_type="application/json"), 400, "parse_error")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"3", b"null"])
def test_a_body_that_is_no_object_is_400(api, raw):
    data = assert_error(api.post(INVOKE, raw, content_type="application/json"), 400, "body_not_an_object")
    assert data["detail"] == "the body must be a JSON object"


def test_input_that_is_no_object_is_400_naming_it(api):
    data = assert_error(invoke(api, "chat", "s", {"input": [1, 2]}), 400, "invalid")
    assert data["fields"] == {"input": ["must be a JSON object of state fields, not an array"]}


@pytest.mark.parametrize("session_id", ["has space", "x" * 256, "semi;colon", "dup%0A", "%C3%A9t%C3%A9"])
def test_an_invalid_session_id_is_400(api, session_id):
    data = assert_error(api.get(session_url("chat", session_id)), 400, "invalid_session_id")
    assert "1-255 characters" in data["detail"]
    assert_error(invoke(api, "chat", session_id, {}), 400, "invalid_session_id")


@pytest.mark.parametrize("path", ["/api/", "/api/nothing/here", "/api/flows/chat/sessions/s/unknown/",
                                  "/api/flows/chat/sessions/s/checkpoints/a/b/"])
def test_a_path_that_is_no_route_is_a_json_404(api, path):
    assert_error(api.get(path), 404, "not_found")


def test_a_write_to_a_path_that_is_no_route_is_a_json_404_not_a_csrf_page(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="pw")
    for method in ("post", "delete", "put"):
        assert_error(getattr(client, method)("/api/flows/chat/sessions/s/invoke"), 404, "not_found")
        assert_error(getattr(client, method)("/api/nothing/"), 404, "not_found")


def test_a_missing_slash_gets_a_hint_not_a_redirect(api):
    response = api.post("/api/flows/chat/sessions/s/invoke", {}, format="json")
    data = assert_error(response, 404, "not_found")
    assert data["detail"].endswith("did you mean /api/flows/chat/sessions/s/invoke/ ?")


def test_a_wrong_method_is_405(api):
    data = assert_error(api.get(INVOKE), 405, "method_not_allowed")
    assert '"GET"' in data["detail"]
    assert_error(api.put("/api/flows/", {}, format="json"), 405, "method_not_allowed")


def test_an_unacceptable_format_is_406_in_json(api):
    response = api.get("/api/flows/", HTTP_ACCEPT="application/xml")
    assert_error(response, 406, "not_acceptable")
    assert_error(api.get(session_url("chat", "s", "state"), HTTP_ACCEPT="text/event-stream"), 406, "not_acceptable")
    data = assert_error(api.get("/api/flows/?format=sse"), 406, "not_acceptable")
    assert "available: json" in data["detail"]


def test_a_body_over_the_limit_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = b'{"input": {"messages": ["' + b"x" * 2000 + b'"]}}'
    data = assert_error(api.post(INVOKE, big, content_type="application/json"), 413, "request_too_large")
    assert "1000 bytes" in data["detail"]


def test_a_state_over_the_limit_is_413(api, settings):
    settings.FLOWS = {**settings.FLOWS, "CHECKPOINTER": {"BACKEND": "django", "OPTIONS": {"max_state_bytes": 500}}}
    registry.clear_cache()
    data = assert_error(invoke(api, "chat", "s", {"input": {"messages": ["y" * 1000]}}), 413, "state_too_large")
    assert "max_state_bytes=500" in data["detail"]
    assert invoke(api, "chat", "s", {"input": {"messages": ["short"]}}).status_code == 200


def test_an_unsupported_media_type_is_415(api):
    data = assert_error(api.post(INVOKE, "input=1", content_type="application/x-www-form-urlencoded"), 415,
                        "unsupported_media_type")
    assert "application/x-www-form-urlencoded" in data["detail"]


def test_too_many_invokes_are_429_with_retry_after(api, settings):
    settings.FLOWS = {**settings.FLOWS, "THROTTLE_RATES": {"invoke": "2/minute"}}
    cache.clear()
    for _ in range(2):
        assert invoke(api, "chat", "s", {"input": {"messages": ["hi"]}}).status_code == 200
    response = invoke(api, "chat", "s", {"input": {"messages": ["hi"]}})
    assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert api.get(session_url("chat", "s", "state")).status_code == 200  # only runs are throttled
    cache.clear()


def test_the_invoke_throttle_is_on_by_default():
    from flows.conf import DEFAULTS

    assert DEFAULTS["THROTTLE_CLASSES"] == ["flows.api.throttles.InvokeRateThrottle"]
    assert DEFAULTS["THROTTLE_RATES"] == {"invoke": "60/minute"}


def test_a_bug_is_a_500_in_json_without_a_traceback(api, settings):
    settings.FLOWS = {**settings.FLOWS, "REGISTRY": {**FLOWS, "broken": "tests.api.flows.broken_factory"}}
    data = assert_error(api.get("/api/flows/broken/"), 500, "server_error")
    assert data["detail"] == "internal server error"


def test_with_debug_a_bug_shows_its_traceback_in_json(api, settings):
    settings.DEBUG = True
    settings.FLOWS = {**settings.FLOWS, "REGISTRY": {**FLOWS, "broken": "tests.api.flows.broken_factory"}}
    data = assert_error(api.get("/api/flows/broken/"), 500, "server_error")
    assert "Traceback" in data["detail"] and "the factory is broken" in data["detail"]


def test_errors_before_the_view_are_json_on_api_paths(settings):
    settings.ALLOWED_HOSTS = ["example.com"]
    client = APIClient(SERVER_NAME="evil.example")
    assert_error(client.get("/api/flows/"), 400, "bad_request")
    response = client.get("/admin/")
    assert response.status_code == 400 and not response["Content-Type"].startswith("application/json")
