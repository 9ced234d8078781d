"""The registry: flows by name, resolved once, with the configured checkpointer."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from flows import registry
from flows.checkpointer import DjangoCheckpointer
from flows.engine import FlowEngine
from flows.engine.checkpointers import InMemoryCheckpointer
from tests.django import flows as test_flows

SEED = "tests.flows_fixtures.seed_flow"


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.clear_cache()
    yield
    registry.clear_cache()


@override_settings(FLOWS={"REGISTRY": {"seed": SEED, "approval": "tests.django.flows.approval_flow"}})
def test_factory_receives_a_django_checkpointer_named_after_the_flow():
    engine = registry.get_flow("seed")
    assert isinstance(engine, FlowEngine)
    assert isinstance(engine.checkpointer, DjangoCheckpointer)
    assert engine.checkpointer.flow_name == "seed"
    assert registry.get_flow("seed") is engine  # cached
    assert registry.get_checkpointer("approval").flow_name == "approval"
    assert registry.flow_names() == ["approval", "seed"]


@override_settings(FLOWS={"REGISTRY": {"prebuilt": "tests.django.flows.prebuilt"}})
def test_a_built_engine_gets_the_checkpointer_attached():
    engine = registry.get_flow("prebuilt")
    assert engine is test_flows.prebuilt
    assert isinstance(engine.checkpointer, DjangoCheckpointer)


def test_settings_change_clears_the_cache_and_replaces_attached_stores():
    with override_settings(FLOWS={"REGISTRY": {"prebuilt": "tests.django.flows.prebuilt"}}):
        first = registry.get_flow("prebuilt").checkpointer
    with override_settings(
        FLOWS={"REGISTRY": {"prebuilt": "tests.django.flows.prebuilt"}, "CHECKPOINTER": {"BACKEND": "memory"}}
    ):
        second = registry.get_flow("prebuilt").checkpointer
    assert isinstance(first, DjangoCheckpointer)
    assert isinstance(second, InMemoryCheckpointer)


def test_a_store_chosen_by_the_site_is_kept():
    own = InMemoryCheckpointer()
    test_flows.own_store = test_flows.seed_flow(own)
    try:
        with override_settings(FLOWS={"REGISTRY": {"own": "tests.django.flows.own_store"}}):
            assert registry.get_flow("own").checkpointer is own
    finally:
        del test_flows.own_store


@override_settings(FLOWS={"REGISTRY": {"seed": SEED}})
def test_unknown_flow_is_flow_not_found():
    with pytest.raises(registry.FlowNotFound, match=r"'nope'.*known: seed"):
        registry.get_flow("nope")


@override_settings(FLOWS={"REGISTRY": {"bad": "tests.django.flows.returns_a_string"}})
def test_factory_returning_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="not a FlowEngine"):
        registry.get_flow("bad")


@override_settings(
    FLOWS={
        "REGISTRY": {"seed": SEED},
        "LEASE_SECONDS": 7,
        "BUSY_TIMEOUT": 3,
        "MAX_CHECKPOINTS_PER_SESSION": 50,
        "TTL_SECONDS": 600,
        "CHECKPOINTER": {"BACKEND": "django", "OPTIONS": {"busy_timeout": 9, "compress": True}},
    }
)
def test_shared_options_reach_the_checkpointer_and_options_win():
    checkpointer = registry.get_checkpointer("seed")
    assert checkpointer.lease_seconds == 7
    assert checkpointer.busy_timeout == 9
    assert checkpointer.max_checkpoints_per_session == 50
    assert checkpointer.ttl_seconds == 600


def test_redis_store_is_namespaced_per_flow():
    pytest.importorskip("redis")
    checkpointer = {"BACKEND": "redis", "OPTIONS": {"prefix": "site:"}}
    with override_settings(FLOWS={"CHECKPOINTER": checkpointer, "TTL_SECONDS": 60}):
        store = registry.build_checkpointer("support")
    assert store.prefix == "site:support:"
    assert store.ttl_seconds == 60


def test_per_flow_checkpointer(settings):
    settings.FLOWS = {"REGISTRY": {"seed": {"PATH": SEED, "CHECKPOINTER": {"BACKEND": "memory"}}}}
    assert isinstance(registry.get_checkpointer("seed"), InMemoryCheckpointer)


def test_malformed_registry_is_improperly_configured(settings):
    settings.FLOWS = {"REGISTRY": {"seed": 3}}
    with pytest.raises(ImproperlyConfigured):
        registry.get_flow("seed")
