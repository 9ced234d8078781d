"""Signals sent as registered flows run; receivers may be sync or ``async def``.

Every signal is sent with ``sender`` set to the flow's registered name, and the
keyword arguments ``flow_name`` plus:

* ``run_started`` — ``event``: a call began running (or re-reporting) a run;
* ``node_finished`` — ``event``: the engine's node-finished event (node, step,
  updates, checkpoint id, run and session ids);
* ``checkpoint_saved`` — ``metadata``: the saved checkpoint's ``CheckpointMetadata``;
* ``run_finished`` — ``event``: the run-finished event (with the final state);
* ``run_failed`` — ``event``: the run-failed event (error type, message, node);
* ``run_interrupted`` — ``event``: the run stopped at a question for a human.

They are sent with ``Signal.asend()`` from the engine's hooks
(:class:`SignalHooks`), so async receivers run on the flow's event loop and
sync ones in a thread. A receiver that raises fails the run: keep them small.

The app itself listens to them (:mod:`flows.receivers`): ``run_failed`` marks
the ``FlowSession`` failed with the error, and for stores that do not keep the
row's status themselves (Redis, SQL) the others follow the session's status.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from flows.engine import FlowEngineHooks
from flows.engine.checkpointers import CheckpointMetadata

run_started = Signal()
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

    async def on_run_started(self, event: dict[str, Any]) -> None:
        await self._send(run_started, event=event)

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
