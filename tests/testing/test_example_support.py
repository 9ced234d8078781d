"""Tests of the demo's support desk, written as a site would (docs/testing.md shows this file)."""

import pytest
from django.test import TestCase

from flows.testing import arun, events, override_flows, run, streamed_text

SUPPORT = {"support": "project.flows.support.build_support_flow"}


@override_flows(SUPPORT)
class SupportDeskTests(TestCase):
    def test_an_faq_is_answered_at_once(self):
        state = run("support", {"messages": ["What are your opening hours?"]})
        self.assertIn("Monday to Friday", state["messages"][-1]["content"])

    def test_a_refund_waits_for_a_human_then_goes_on(self):
        state = run("support", {"messages": ["A refund for order 12345 please, I'm ann@example.com"]})
        [question] = state["__interrupt__"]
        self.assertEqual(question["value"]["order_id"], "12345")
        state = run("support", resume={"approved": True, "note": "sorry!"})
        self.assertIn("is approved", state["messages"][-1]["content"])
        self.assertNotIn("__interrupt__", state)

    def test_the_reply_streams_token_by_token(self):
        found = events("support", {"messages": ["hello"]})
        chunks = [event for event in found if event["event"] == "chunk"]
        self.assertGreater(len(chunks), 5)
        self.assertEqual(streamed_text(found), found[-1]["state"]["messages"][-1]["content"])


@pytest.mark.usefixtures("flows_in_memory")
@pytest.mark.asyncio
async def test_an_order_number_is_asked_for_over_two_turns(settings):
    settings.FLOWS = {**settings.FLOWS, "REGISTRY": SUPPORT}
    state = await arun("support", {"messages": ["where is my order?"]}, session_id="o1")
    assert "order number" in state["messages"][-1]["content"]
    state = await arun("support", {"messages": ["it's 12345"]}, session_id="o1")
    assert state["messages"][-1]["content"].startswith("Order 12345 ")
