"""Engine hooks that record every call of a registered flow as a ``Run`` with its events.

The registry adds them to every flow it loads, so a run started anywhere — the
REST API, a background worker, the admin, a management command, a socket —
has its record and its durable events, and every watcher of the session sees
it. Whoever starts a call may prepare its :class:`Recorder` (with the run's id,
owner and input) in :data:`current_recorder`; a call without one gets a record
of its own, marked with :data:`current_origin`.
"""

from __future__ import annotations

from typing import Any

from flows.engine import FlowEngineHooks

from .recorder import current_recorder, implicit_recorder


class RunHooks(FlowEngineHooks):
    def __init__(self, flow_name: str) -> None:
        self.flow_name = flow_name

    async def on_run_started(self, event: dict[str, Any]) -> None:
        if event.get("session_id") is None:
            return  # no session, nothing to record
        recorder = current_recorder.get()
        if recorder is None or recorder.started:  # nobody prepared this call (or a finished call's is left)
            recorder = implicit_recorder(self.flow_name, event)
            current_recorder.set(recorder)
        recorder.add(event)
        if recorder.durable_start:  # the input is saved: a worker that takes the run over must not apply it again
            await recorder.flush_start()

    def _record(self, event: dict[str, Any]) -> None:
        recorder = current_recorder.get()
        if recorder is not None and recorder.started and event.get("session_id") == recorder.session_id:
            recorder.add(event)

    def on_node_started(self, event: dict[str, Any]) -> None:
        self._record(event)

    def on_chunk(self, event: dict[str, Any]) -> None:
        self._record(event)

    def on_node_finished(self, event: dict[str, Any]) -> None:
        self._record(event)

    async def _end(self, event: dict[str, Any]) -> None:
        recorder = current_recorder.get()
        if recorder is None or not recorder.started or event.get("session_id") != recorder.session_id:
            return
        recorder.add(event)
        await recorder.finish()  # before the engine releases the session: the next run's events come after
        current_recorder.set(None)

    async def on_interrupted(self, event: dict[str, Any]) -> None:
        await self._end(event)

    async def on_run_finished(self, event: dict[str, Any]) -> None:
        await self._end(event)

    async def on_run_failed(self, event: dict[str, Any]) -> None:
        await self._end(event)
