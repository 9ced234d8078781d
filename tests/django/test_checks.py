"""Each system check, its failure and its silence on a sound configuration."""

from __future__ import annotations

import importlib.util

import pytest
from django.core import checks
from django.test import override_settings

from flows import checks as flow_checks

SEED = "tests.flows_fixtures.seed_flow"


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def run_all() -> list:
    """The FLOWS checks (the channel layer check has its own tests)."""
    return [m for m in checks.run_checks(tags=["flows"]) if m.id != "flows.W001"]


@override_settings(FLOWS={"REGISTRY": {"seed": SEED, "prebuilt": "tests.django.flows.prebuilt"}})
def test_sound_configuration_is_silent():
    assert run_all() == []


def test_no_flows_setting_is_silent(settings):
    del settings.FLOWS
    assert run_all() == []


@pytest.mark.parametrize(
    "flows, fragment",
    [
        (["not", "a", "dict"], "must be a dict"),
        ({"REGISTRI": {}}, "unknown keys: REGISTRI"),
        ({"ON_BUSY": "sometimes"}, "ON_BUSY"),
        ({"EVENTS_REDIS_URL": "localhost:6379"}, "EVENTS_REDIS_URL"),
        ({"EVENTS_REDIS_SESSION_MAXLEN": 0}, "EVENTS_REDIS_SESSION_MAXLEN"),
        ({"RUN_STALE_SECONDS": "30"}, "RUN_STALE_SECONDS"),
        ({"BUSY_TIMEOUT": -1}, "BUSY_TIMEOUT"),
        ({"LEASE_SECONDS": "30"}, "LEASE_SECONDS"),
        ({"TTL_SECONDS": 0}, "TTL_SECONDS"),
        ({"PERMISSION_CLASSES": "rest_framework.permissions.AllowAny"}, "PERMISSION_CLASSES"),
        ({"THROTTLE_CLASSES": None}, "THROTTLE_CLASSES"),
        ({"AUTHENTICATION_CLASSES": "rest_framework.authentication.TokenAuthentication"}, "AUTHENTICATION_CLASSES"),
        ({"ANONYMOUS": "yes"}, "ANONYMOUS"),
        ({"PAGE_SIZE": 0}, "PAGE_SIZE"),
        ({"PAGE_SIZE": 1000}, "PAGE_SIZE"),
        ({"THROTTLE_RATES": ["60/minute"]}, "THROTTLE_RATES"),
        ({"THROTTLE_RATES": {"invoke": "sixty"}}, "THROTTLE_RATES']['invoke']"),
        ({"REGISTRY": ["seed"]}, "REGISTRY"),
        ({"REGISTRY": {"seed": 42}}, "REGISTRY']['seed']"),
        ({"REGISTRY": {"my flow": SEED}}, "flow name 'my flow'"),
        ({"CHECKPOINTER": {"BACKEND": 1}}, "CHECKPOINTER"),
        ({"CHECKPOINTER": {"BACKEND": "django", "OPTIONS": []}}, "OPTIONS"),
    ],
)
def test_e001_malformed_settings(settings, flows, fragment):
    settings.FLOWS = flows
    messages = run_all()
    assert ids(messages) == ["flows.E001"], messages
    assert fragment in messages[0].msg


def test_e002_flow_does_not_import(settings):
    settings.FLOWS = {"REGISTRY": {"gone": "tests.django.no_such_module.flow"}}
    messages = run_all()
    assert ids(messages) == ["flows.E002"]
    assert "'gone'" in messages[0].msg


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("tests.django.flows.NOT_A_FLOW", "got int"),
        ("tests.django.flows.returns_a_string", "got str"),
        ("tests.django.flows.invalid_graph", "invalid graph"),
    ],
)
def test_e003_not_a_flow_engine(settings, path, fragment):
    settings.FLOWS = {"REGISTRY": {"bad": path}}
    messages = run_all()
    assert ids(messages) == ["flows.E003"]
    assert fragment in messages[0].msg


@pytest.mark.parametrize("backend", ["nosuch", "tests.django.flows.NOT_A_FLOW", "flows.engine.FlowEngine"])
def test_e004_unknown_checkpointer(settings, backend):
    settings.FLOWS = {"CHECKPOINTER": {"BACKEND": backend}}
    messages = run_all()
    assert ids(messages) == ["flows.E004"]


def test_e004_per_flow_checkpointer(settings):
    settings.FLOWS = {"REGISTRY": {"seed": {"PATH": SEED, "CHECKPOINTER": {"BACKEND": "nosuch.Store"}}}}
    messages = run_all()
    assert ids(messages) == ["flows.E004"]
    assert "flow 'seed'" in messages[0].msg


def test_e005_missing_dependency_of_a_dotted_path(settings):
    settings.FLOWS = {"CHECKPOINTER": {"BACKEND": "tests.django.missing_dependency_backend.Store"}}
    messages = run_all()
    assert ids(messages) == ["flows.E005"]
    assert "flows_test_package_that_is_not_installed" in messages[0].msg


@pytest.mark.parametrize(
    "checkpointer, missing, extra",
    [
        ({"BACKEND": "redis"}, "redis", "redis"),
        ({"BACKEND": "sql", "OPTIONS": {"connection_string": "postgresql+asyncpg://db/x"}}, "asyncpg", "asyncpg"),
        ({"BACKEND": "django", "OPTIONS": {"encryption_keys": ["k"]}}, "cryptography", "encryption"),
    ],
)
def test_e005_missing_optional_dependency(settings, monkeypatch, checkpointer, missing, extra):
    """The hint installs the extra the README names (the distribution's name, not the bare module)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    settings.FLOWS = {"CHECKPOINTER": checkpointer}
    messages = run_all()
    assert ids(messages) == ["flows.E005"]
    assert messages[0].hint == f"pip install 'django-persistent-flows[{extra}]'"


def test_e006_bad_checkpointer_options(settings):
    settings.FLOWS = {"CHECKPOINTER": {"BACKEND": "django", "OPTIONS": {"no_such_option": 1}}}
    assert ids(run_all()) == ["flows.E006"]
    settings.FLOWS = {"CHECKPOINTER": {"BACKEND": "django", "OPTIONS": {"using": "nowhere"}}}
    messages = run_all()
    assert ids(messages) == ["flows.E006"]
    assert "'nowhere'" in messages[0].msg


IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


@pytest.mark.parametrize(
    "debug, layers, expected",
    [(False, IN_MEMORY, ["flows.W001"]), (True, IN_MEMORY, []), (False, REDIS, []), (False, {}, [])],
)
def test_w001_in_memory_channel_layer_in_production(settings, debug, layers, expected):
    settings.DEBUG = debug
    settings.CHANNEL_LAYERS = layers
    assert ids(flow_checks.check_channel_layer()) == expected


def test_api_settings_that_are_sound_are_silent(settings):
    settings.FLOWS = {"ANONYMOUS": True, "AUTHENTICATION_CLASSES": None, "THROTTLE_RATES": {"invoke": None},
                      "PAGE_SIZE": 50, "THROTTLE_CLASSES": []}
    assert run_all() == []


@pytest.mark.parametrize("app", ["drf_spectacular", "drf_spectacular_sidecar", "rest_framework"])
def test_e007_the_api_is_routed_without_an_app_it_needs(settings, app):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != app]
    messages = [m for m in run_all() if m.id == "flows.E007"]
    assert len(messages) == 1 and repr(app) in messages[0].msg


def test_e007_token_authentication_without_authtoken(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "rest_framework.authtoken"]
    messages = [m for m in run_all() if m.id == "flows.E007"]
    assert len(messages) == 1 and "rest_framework.authtoken" in messages[0].msg
    settings.FLOWS = {"AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"]}
    assert [m for m in run_all() if m.id == "flows.E007"] == []


@override_settings(ROOT_URLCONF="tests.django.admin_only_urls", INSTALLED_APPS=["django.contrib.auth",
                   "django.contrib.contenttypes", "django.contrib.admin", "django.contrib.sessions",
                   "django.contrib.messages", "flows"])
def test_a_site_without_the_api_needs_none_of_its_apps():
    assert [m for m in run_all() if m.id == "flows.E007"] == []
