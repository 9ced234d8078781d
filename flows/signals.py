"""Signals sent as registered flows run; receivers may be sync or ``async def``.

Every signal is sent with ``sender`` set to the flow's registered name, and the
keyword arguments ``flow_name`` plus:

* ``node_finished`` — ``event``: the engine's node-finished event (node, step,
  updates, checkpoint id, run and session ids);
* ``checkpoint_saved`` — ``metadata``: the saved checkpoint's ``CheckpointMetadata``;
* ``run_finished`` — ``event``: the run-finished event (with the final state);
* ``run_failed`` — ``event``: the run-failed event (error type, message, node);
* ``run_interrupted`` — ``event``: the run stopped at a question for a human.

They are sent with ``Signal.asend()`` from the engine's hooks
(:class:`SignalHooks`), so async receivers run on the flow's event loop and
sync ones in a thread. A receiver that raises fails the run: keep them small.

The app itself listens to ``run_failed`` to mark the ``FlowSession`` failed and
keep the error message.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal, receiver

from flows.engine import FlowEngineHooks
from flows.engine.checkpointers import CheckpointMetadata

node_finished = Signal()
checkpoint_saved = Signal()
run_finished = Signal()
run_failed = Signal()
run_interrupted = Signal()


class SignalHooks(FlowEngineHooks):
    """Engine hooks that send the signals above for the flow ``flow_name``.

    The registry gives them to flows it builds (factories that accept a
    ``hooks`` argument). A flow with hooks of its own subclasses this class
    and calls ``super()``.
    """

    def __init__(self, flow_name: str) -> None:
        self.flow_name = flow_name

    async def _send(self, signal: Signal, **kwargs: Any) -> None:
        await signal.asend(sender=self.flow_name, flow_name=self.flow_name, **kwargs)

    async def on_node_finished(self, event: dict[str, Any]) -> None:
        await self._send(node_finished, event=event)

    async def on_checkpoint(self, metadata: CheckpointMetadata) -> None:
        await self._send(checkpoint_saved, metadata=metadata)

    async def on_run_finished(self, event: dict[str, Any]) -> None:
        await self._send(run_finished, event=event)

    async def on_run_failed(self, event: dict[str, Any]) -> None:
        await self._send(run_failed, event=event)

    async def on_interrupted(self, event: dict[str, Any]) -> None:
        await self._send(run_interrupted, event=event)


@receiver(run_failed, dispatch_uid="flows.record_failure")
async def record_failure(sender: Any, *, flow_name: str, event: dict[str, Any], **kwargs: Any) -> None:
    """Marks the session failed with the error, for the admin and the API."""
    session_id = event.get("session_id")
    if session_id is None:
        return
    error = event.get("error") or {}
    message = f"{error.get('type', 'Error')}: {error.get('message', '')}"
    if error.get("node"):
        message = f"node {error['node']!r}: {message}"

    using = _database_of(flow_name)

    def update() -> None:
        from .models import FlowSession

        FlowSession.objects.using(using).filter(flow_name=flow_name, session_id=session_id).update(
            status="failed", last_error=message
        )

    from .checkpointer import run_in_orm_thread

    await run_in_orm_thread(update, using=using)


def _database_of(flow_name: str) -> str:
    """Where the flow's sessions live: its DjangoCheckpointer's database, else ``default``."""
    from . import registry

    try:
        return getattr(registry.get_checkpointer(flow_name), "using", "default")
    except registry.FlowNotFound:
        return "default"
