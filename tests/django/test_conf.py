"""``flows_settings``: defaults, user values, reload on change, malformed settings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from flows.conf import DEFAULTS, FlowsSettings, flows_settings


def test_defaults_apply_when_unset(settings):
    del settings.FLOWS
    assert flows_settings.ON_BUSY == "wait"
    assert flows_settings.REGISTRY == {}
    assert DEFAULTS["CHECKPOINTER"] == flows_settings.CHECKPOINTER


def test_user_values_override_defaults_and_reload_on_change():
    with override_settings(FLOWS={"ON_BUSY": "reject", "TTL_SECONDS": 60}):
        assert flows_settings.ON_BUSY == "reject"
        assert flows_settings.TTL_SECONDS == 60
        assert DEFAULTS["BUSY_TIMEOUT"] == flows_settings.BUSY_TIMEOUT
    assert flows_settings.ON_BUSY == "wait"
    assert flows_settings.TTL_SECONDS is None


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="NOPE"):
        flows_settings.NOPE  # noqa: B018


def test_malformed_setting_is_improperly_configured(settings):
    settings.FLOWS = ["not a dict"]
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        flows_settings.ON_BUSY  # noqa: B018


def test_nothing_is_read_before_access(settings):
    fresh = FlowsSettings()
    assert fresh._cached == set()
    settings.FLOWS = {"LEASE_SECONDS": 5}
    assert fresh.LEASE_SECONDS == 5
    assert fresh._cached == {"LEASE_SECONDS"}
