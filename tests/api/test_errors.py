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


def test_the_stream_routes_refuse_a_client_that_wants_json(api):
    invoke(api, "chat", "s", {"input": {"messages": ["hi"]}})
    run_id = api.get(session_url("chat", "s", "runs")).json()["results"][0]["run_id"]
    for url in (session_url("chat", "s", "stream"), session_url("chat", "s", f"runs/{run_id}/stream")):
        data = assert_error(api.get(url, HTTP_ACCEPT="application/json"), 406, "not_acceptable")
        assert "text/event-stream" in data["detail"]


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


def test_json_nested_too_deeply_is_400(api):
    depth = 200_000  # deeper than any Python parses (3.13 takes 5,000 levels)
    response = api.post(INVOKE, b"[" * depth + b"]" * depth, content_type="application/json")
    data = assert_error(response, 400, "parse_error")
    assert "nested too deeply" in data["detail"]


def test_a_lone_surrogate_in_the_input_is_answered_in_json(api):
    response = api.post(INVOKE, b'{"input": {"\\ud800": 1}}', content_type="application/json")
    data = assert_error(response, 400, "invalid_input")
    assert list(data["fields"]) == ["input.\ud800"]


@pytest.mark.parametrize("where", ["state/?checkpoint_id=a%00b", "checkpoints/?before=a%00b",
                                   "checkpoints/?after=a%00b", "checkpoints/a%00b/"])
def test_checkpoint_ids_that_cannot_exist_are_refused_before_the_database(api, where):
    invoke(api, "chat", "s", {"input": {"messages": ["hi"]}})
    response = api.get(session_url("chat", "s") + where)
    assert_error(response, 404 if where.startswith("checkpoints/a") else 400, "checkpoint_not_found")
    data = assert_error(invoke(api, "chat", "s", {"checkpoint_id": "a\x00b"}), 400, "invalid")
    assert "checkpoint_id" in data["fields"]
    assert_error(invoke(api, "chat", "s", {"checkpoint_id": "a b"}), 400, "checkpoint_not_found")


def test_an_unknown_schema_format_is_406(api):
    assert_error(api.get("/api/schema/?format=xyz"), 406, "not_acceptable")


def test_a_node_that_writes_what_its_schema_refuses_is_a_failed_run_not_bad_input(api):
    data = assert_error(invoke(api, "sloppy", "s", {"input": {"messages": ["hi"]}}), 500, "node_failed")
    assert data["node"] == "write" and data["error_type"] == "InvalidInput" and "fields" not in data
    assert api.get(session_url("sloppy", "s")).json()["status"] == "failed"


def test_streaming_needs_an_asgi_server(api):
    response = invoke(api, "chat", "wsgi", {"input": {"messages": ["hi"]}}, HTTP_ACCEPT="text/event-stream")
    data = assert_error(response, 406, "not_acceptable")  # the test client is WSGI
    assert "ASGI server" in data["detail"]
    from flows.models import FlowSession

    assert not FlowSession.objects.filter(session_id="wsgi").exists()


def test_anonymous_callers_are_throttled_by_address_not_by_what_they_claim(api, settings):
    settings.FLOWS = {**settings.FLOWS, "ANONYMOUS": True, "THROTTLE_RATES": {"invoke": "2/minute"}}
    cache.clear()
    anonymous = APIClient()
    statuses = [invoke(anonymous, "chat", "guest", {"input": {"messages": ["hi"]}},
                       HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(4)]
    assert statuses == [200, 200, 429, 429]
    cache.clear()
