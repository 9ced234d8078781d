"""Stopping a run wherever it executes: the request is a field of its ``Run`` row.

Whoever wants a run stopped — ``POST …/cancel/``, or a newer run on the same
session with ``on_busy="interrupt"`` or ``"rollback"`` — sets ``stop_requested``
(a run still ``pending`` is cancelled at once). The process executing the run
polls that field every ``POLL_SECONDS`` (:func:`watch`) and cancels the run at
its next await point. A stopped run keeps what it checkpointed, except after
``rollback``, which deletes it; its last event is a ``run_failed`` of type
``RunStopped``, so every stream of it ends with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.utils import timezone

from flows.checkpointer import run_in_orm_thread
from flows.engine import FlowEngine

#: How often a running run looks for a stop request.
POLL_SECONDS = 0.2
#: How often it tells the others that its process is alive.
HEARTBEAT_SECONDS = 2.0
ACTIONS = ("cancel", "interrupt", "rollback")
REASONS = {
    "cancel": "cancelled",
    "interrupt": "stopped by a newer run (interrupt)",
    "rollback": "stopped and rolled back by a newer run",
}


class RunStopped(Exception):
    """The run was stopped before it ended (``action``: cancel, interrupt or rollback)."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(REASONS.get(action, action))


# -- rows (blocking; on the ORM pool) ----------------------------------------------------------


def stop_runs(flow_name: str, session_id: str, action: str, *, below_pk: int | None = None,
              keep: str | None = None) -> None:
    """Asks the session's unfinished runs (those created before ``below_pk``, all but ``keep``) to stop."""
    from flows.models import Run

    runs = Run.objects.filter(flow_name=flow_name, session_id=session_id)
    if below_pk is not None:
        runs = runs.filter(pk__lt=below_pk)
    if keep is not None:
        runs = runs.exclude(run_id=keep)
    runs.filter(status="pending").update(status="cancelled", finished_at=timezone.now(),
                                         error=f"{REASONS[action]} before it started")
    runs.filter(status="running", stop_requested="").update(stop_requested=action)


def mark_stop(run_id: str, action: str) -> int:
    """Asks one run to stop: a pending run is cancelled at once; returns the rows changed."""
    from flows.models import Run

    cancelled = Run.objects.filter(run_id=run_id, status="pending").update(
        status="cancelled", error="cancelled before it started", finished_at=timezone.now()
    )
    return cancelled or Run.objects.filter(run_id=run_id, status="running").update(stop_requested=action)


def stop_request(run_id: str, beat: bool) -> str:
    """The run's stop request ('' for none, or while its row is not written yet); ``beat`` renews its heartbeat."""
    from flows.models import Run

    if beat:
        Run.objects.filter(run_id=run_id).update(heartbeat_at=timezone.now())
    return Run.objects.filter(run_id=run_id).values_list("stop_requested", flat=True).first() or ""


# -- in the executing process --------------------------------------------------------------------


async def watch(run_id: str, work: asyncio.Future[Any]) -> str:
    """Beats the run's heartbeat and polls for a stop request until ``work`` ends.

    A request cancels ``work`` and is returned ('' when ``work`` ended by itself).
    """
    loop = asyncio.get_running_loop()
    next_beat = loop.time()
    while not work.done():
        beat = loop.time() >= next_beat
        if beat:
            next_beat = loop.time() + HEARTBEAT_SECONDS
        action = await run_in_orm_thread(stop_request, run_id, beat)
        if action:
            work.cancel()
            return action
        await asyncio.sleep(POLL_SECONDS)
    return ""


def stopped_event(run_id: str, session_id: str, action: str) -> dict[str, Any]:
    """The last event of a stopped run (the engine's vocabulary: a run that failed to end)."""
    return {"event": "run_failed", "run_id": run_id, "session_id": session_id, "node": None, "step": None,
            "error": {"type": "RunStopped", "message": REASONS.get(action, action), "node": None}}


async def discard_after(engine: FlowEngine, session_id: str, base: str | None) -> None:
    """Deletes every checkpoint after ``base`` on the head's branch (``None``: every checkpoint)."""
    if base is None:
        await engine.reset_session(session_id)
        return
    head = await engine.get_metadata(session_id)
    since = await engine.get_metadata(session_id, base)
    if head is None or since is None or head.checkpoint_id == base:
        return
    chain = await engine.list_checkpoints(session_id, limit=head.depth - since.depth + 1)
    ids = [meta.checkpoint_id for meta in chain]
    if base in ids and ids.index(base) > 0:
        await engine.delete_checkpoints(session_id, ids[ids.index(base) - 1])


async def end_stopped(engine: FlowEngine, recorder: Any, action: str) -> dict[str, Any]:
    """Records the end of a stopped run (after ``rollback``, without its checkpoints); returns its last event."""
    fields: dict[str, Any] = {}
    if action == "rollback":
        base = recorder.outcome.get("base_checkpoint_id") or None
        await discard_after(engine, recorder.session_id, base)
        fields["head_checkpoint_id"] = base or ""  # it leaves the session where it found it
    event = stopped_event(recorder.outcome.get("engine_run_id") or recorder.run_id, recorder.session_id, action)
    recorder.add(event)
    await recorder.finish(status="cancelled", error=REASONS.get(action, action), interrupts=[], **fields)
    return event
