from __future__ import annotations

import pytest
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db(transaction=True)


def test_mermaid_and_details(run):
    assert run("flows_graph", "approval").startswith("flowchart TD")
    assert "draft -> approve" in run("flows_graph", "approval", "--details")


def test_unknown_flow(run):
    with pytest.raises(CommandError, match="no flow named 'nope'"):
        run("flows_graph", "nope")
