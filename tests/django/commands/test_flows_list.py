from __future__ import annotations

import pytest
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db(transaction=True)


def test_lists_flows_with_nodes_state_and_store(run):
    out = run("flows_list")
    assert "approval  tests.django.flows.approval_flow" in out
    assert "nodes: draft, approve" in out and "state: messages, approved" in out
    assert "DjangoCheckpointer flow='seed'" in out


def test_nothing_registered(run, settings):
    settings.FLOWS = {}
    assert "No flows are registered" in run("flows_list")


def test_broken_flow_is_a_command_error(run, settings):
    settings.FLOWS = {"REGISTRY": {"bad": "tests.django.flows.returns_a_string"}}
    with pytest.raises(CommandError, match=r"'bad'.*cannot be loaded"):
        run("flows_list")
