"""flows.testing: override_flows, the run and event helpers, and the clear error inside a TestCase."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import TestCase, TransactionTestCase

from flows import registry
from flows.engine.checkpointers import InMemoryCheckpointer
from flows.models import Run
from flows.testing import HiddenWritesError, events, override_flows, run, streamed_text

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "testing.md"
SUPPORT = {"support": "project.flows.support.build_support_flow"}


def test_the_docs_show_the_example_test_as_it_runs():
    """docs/testing.md's example is this directory's test_example_support.py, word for word."""
    assert (HERE / "test_example_support.py").read_text() in DOCS.read_text()


class InMemory(TestCase):
    @override_flows(SUPPORT)
    def test_each_use_starts_empty_and_nothing_is_recorded(self):
        assert isinstance(registry.get_flow("support").checkpointer, InMemoryCheckpointer)
        run("support", {"messages": ["hello"]}, session_id="a")
        assert len(run("support", {"messages": ["hello again"]}, session_id="a")["messages"]) == 4
        assert not Run.objects.exists()
        with override_flows(SUPPORT):
            assert run("support", {"messages": ["hello"]}, session_id="a")["messages"][0]["content"] == "hello"
            assert len(registry.get_flow("support").sync.get_state("a")["messages"]) == 2

    @override_flows(SUPPORT)
    def test_events_and_streamed_text(self):
        found = events("support", {"messages": ["hello"]})
        assert [e["event"] for e in found][:2] == ["run_started", "node_started"]
        assert found[-1]["event"] == "run_finished"
        assert streamed_text(found).startswith("Hello! I can answer")


class WithoutOverride(TestCase):
    def test_a_flow_that_writes_to_the_database_says_what_to_do(self):
        with (
            self.settings(FLOWS={"REGISTRY": SUPPORT}),
            pytest.raises(HiddenWritesError, match=r"override_flows\(\).*TransactionTestCase"),
        ):
            run("support", {"messages": ["hello"]})


class Committed(TransactionTestCase):
    def test_the_database_checkpointer_in_a_transaction_test_case(self):
        with self.settings(FLOWS={"REGISTRY": SUPPORT}):
            run("support", {"messages": ["hello"]}, session_id="db")
            state = run("support", {"messages": ["what are your opening hours?"]}, session_id="db")
            assert "Monday to Friday" in state["messages"][-1]["content"]
            assert Run.objects.filter(session_id="db").count() == 2

    def test_override_flows_with_the_database_records_runs(self):
        with override_flows(SUPPORT, database=True):
            run("support", {"messages": ["hello"]}, session_id="rec")
            assert Run.objects.get(session_id="rec").status == "succeeded"
