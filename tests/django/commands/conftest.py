"""Every command test runs with two registered flows and database access."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from flows import registry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def flows_registry(settings):
    settings.FLOWS = {
        "REGISTRY": {"seed": "tests.flows_fixtures.seed_flow", "approval": "tests.django.flows.approval_flow"},
    }
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture
def run():
    """Calls a command, returning its stdout."""

    def call(*args: str) -> str:
        out = StringIO()
        call_command(*args, stdout=out)
        return out.getvalue()

    return call


@pytest.fixture
def run_json(run):
    return lambda *args: json.loads(run(*args))
