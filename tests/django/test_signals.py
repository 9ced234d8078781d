"""Signals from registered flows, to sync and async receivers."""

from __future__ import annotations

import pytest

from flows import registry, signals
from flows.engine import NodeError
from flows.models import FlowSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def flows_registry(settings):
    settings.FLOWS = {"REGISTRY": {"signalled": "tests.django.flows.signalled_flow"}}
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture
def received():
    log: list[tuple[str, str, dict]] = []

    def sync_receiver(signal_name):
        def receive(sender, **kwargs):
            log.append((signal_name, sender, kwargs))

        return receive

    async def async_finished(sender, **kwargs):
        log.append(("run_finished(async)", sender, kwargs))

    receivers = {
        signals.node_finished: sync_receiver("node_finished"),
        signals.checkpoint_saved: sync_receiver("checkpoint_saved"),
        signals.run_finished: async_finished,
        signals.run_failed: sync_receiver("run_failed"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, weak=False)
    yield log
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


async def test_a_run_sends_node_checkpoint_and_finish_signals(received):
    flow = registry.get_flow("signalled")
    await flow.invoke({"messages": ["hi"], "status": "ok", "counter": 0}, session_id="s1")
    names = [name for name, _, _ in received]
    assert names.count("checkpoint_saved") == 2  # the input, then the node
    assert "node_finished" in names and names[-1] == "run_finished(async)"
    assert all(sender == "signalled" for _, sender, _ in received)
    node = next(kwargs for name, _, kwargs in received if name == "node_finished")
    assert node["flow_name"] == "signalled" and node["event"]["node"] == "count"
    finished = received[-1][2]["event"]
    assert finished["state"]["counter"] == 1 and finished["session_id"] == "s1"


def test_sync_callers_send_them_too(received):
    registry.get_flow("signalled").sync.invoke({"counter": 0}, session_id="s2")
    assert [name for name, _, _ in received][-1] == "run_finished(async)"


async def test_a_failed_run_sends_run_failed_and_marks_the_session(received):
    flow = registry.get_flow("signalled")
    with pytest.raises(NodeError):
        await flow.invoke({"status": "fail"}, session_id="s3")
    failed = [kwargs for name, _, kwargs in received if name == "run_failed"]
    assert failed and failed[0]["event"]["error"]["type"] == "NodeError"
    session = await FlowSession.objects.aget(flow_name="signalled", session_id="s3")
    assert session.status == "failed"
    assert "asked to fail" in session.last_error and "count" in session.last_error
    await flow.invoke({"status": "ok"}, session_id="s3")  # the next good run clears the status
    session = await FlowSession.objects.aget(pk=session.pk)
    assert session.status == "idle"
