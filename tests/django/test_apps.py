"""The app config."""

from __future__ import annotations

from django.apps import apps
from django.core import checks


def test_default_auto_field_is_pinned():
    config = apps.get_app_config("flows")
    assert config.default_auto_field == "django.db.models.BigAutoField"
    assert config.get_model("FlowSession")._meta.pk.get_internal_type() == "BigAutoField"


def test_ready_registers_the_checks():
    assert "flows" in checks.registry.registry.tags_available()
