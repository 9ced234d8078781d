"""Stopping a run wherever it executes: the request is a field of its ``Run`` row.

Whoever wants a run stopped — ``POST …/cancel/``, or a newer run on the same
session with ``on_busy="interrupt"`` or ``"rollback"`` — sets ``stop_requested``
(a run still ``pending`` is cancelled at once). The process executing the run
polls that field every ``POLL_SECONDS`` (:func:`watch`) and cancels the run at
its next await point. A stopped run keeps what it checkpointed, except after a
rollback, which deletes it; its last event is a ``run_failed`` of type
``RunStopped``, so every stream of it ends with the reason.

The engine can take a session over by itself (its ``on_busy="interrupt"``:
the holder's writes are then refused); asking through the row first is what
stops a run in another process at once, and records why.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from flows import sessions
from flows.checkpointer import run_in_orm_thread
from flows.engine import FlowEngine

from .records import end_unstarted

logger = logging.getLogger("flows.runs")

#: How often a running run looks for a stop request.
POLL_SECONDS = 0.2
#: ``stop_requested``: what a client asks (cancel, rollback), what a newer run asks (the others)
REASONS = {
    "cancel": "cancelled",
    "rollback": "cancelled and rolled back",
    "interrupt": "stopped by a newer run (interrupt)",
    "newer-rollback": "stopped and rolled back by a newer run",
}
#: the stop a newer run asks for, by its ``on_busy``
BY_NEWER_RUN = {"interrupt": "interrupt", "rollback": "newer-rollback"}
#: stops that delete the run's checkpoints
ROLLS_BACK = ("rollback", "newer-rollback")


class RunStopped(Exception):
    """The run was stopped before it ended (``action``: cancel, interrupt or rollback)."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(REASONS.get(action, action))


# -- rows (blocking; on the ORM pool) ----------------------------------------------------------


def stop_runs(flow_name: str, session_id: str, on_busy: str, *, below_pk: int | None = None,
              keep: str | None = None) -> list[str]:
    """A newer run with ``on_busy`` (interrupt, rollback) asks the session's unfinished runs
    (those created before ``below_pk``, all but ``keep``) to stop.

    Pending ones end at once; returns the ids of the running ones asked to stop.
    """
    from flows.models import Run

    action = BY_NEWER_RUN[on_busy]
    runs = Run.objects.filter(flow_name=flow_name, session_id=session_id)
    if below_pk is not None:
        runs = runs.filter(pk__lt=below_pk)
    if keep is not None:
        runs = runs.exclude(run_id=keep)
    for run_id in runs.filter(status="pending").values_list("run_id", flat=True):
        end_unstarted(run_id, "cancelled", f"{REASONS[action]} before it started", only_if={"status": "pending"})
    running = list(runs.filter(status="running").values_list("run_id", flat=True))
    runs.filter(run_id__in=running, stop_requested="").update(stop_requested=action)
    return running


def mark_stop(run_id: str, action: str) -> bool:
    """Asks one run to stop: a pending run ends at once; returns whether the run was there to stop."""
    from flows.models import Run

    if end_unstarted(run_id, "cancelled", "cancelled before it started", only_if={"status": "pending"}):
        return True
    return bool(Run.objects.filter(run_id=run_id, status="running").update(stop_requested=action))


def stop_request(run_id: str, beat: bool) -> str:
    """The run's stop request ('' for none, or while its row is not written yet); ``beat`` renews its heartbeat."""
    from flows.models import Run

    if beat:
        Run.objects.filter(run_id=run_id, status="running").update(heartbeat_at=timezone.now())
    return Run.objects.filter(run_id=run_id).values_list("stop_requested", flat=True).first() or ""


def _ended(run_ids: list[str]) -> bool:
    from flows.models import RUN_ENDED, Run

    return not Run.objects.filter(run_id__in=run_ids).exclude(status__in=RUN_ENDED).exists()


async def wait_until_ended(run_ids: list[str], timeout: float) -> bool:
    """Until the runs asked to stop have ended (their rollback done), or ``timeout`` seconds;
    returns whether they did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while run_ids and not await run_in_orm_thread(_ended, run_ids):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS / 2)
    return True


def engine_on_busy(on_busy: str, stopped_all: bool) -> str:
    """What to ask the engine once the runs ahead were stopped through their rows.

    They rolled themselves back: ``rollback`` then only needs the engine's
    ``interrupt`` (start over on the head), unless some did not end in time.
    """
    if on_busy == "rollback" and stopped_all:
        return "interrupt"
    return on_busy


# -- in the executing process --------------------------------------------------------------------


async def watch(run_id: str, work: asyncio.Future[Any]) -> str:
    """Polls for a stop request until ``work`` ends (a database error is retried).

    A request cancels ``work`` and is returned ('' when ``work`` ended by itself).
    """
    while not work.done():
        try:
            action = await run_in_orm_thread(stop_request, run_id, False)
        except DatabaseError:
            logger.warning("could not look for a stop request of run %s", run_id, exc_info=True)
            action = ""
        if action:
            work.cancel()
            return action
        await asyncio.sleep(POLL_SECONDS)
    return ""


def stopped_event(run_id: str, session_id: str, action: str, *, kind: str = "RunStopped") -> dict[str, Any]:
    """The last event of a run that did not end by itself (the engine's vocabulary: a run that failed).

    ``action`` is a stop action, or a message.
    """
    return {"event": "run_failed", "run_id": run_id, "session_id": session_id, "node": None, "step": None,
            "error": {"type": kind, "message": REASONS.get(action, action), "node": None}}


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
    """Records the end of a stopped run (after ``rollback``, without its checkpoints); returns its last event.

    A run that never started (no ``run_started``) wrote nothing: there is nothing to roll back.
    """
    fields: dict[str, Any] = {}
    if action in ROLLS_BACK and recorder.outcome.get("engine_run_id"):
        base = recorder.outcome.get("base_checkpoint_id") or None
        await discard_after(engine, recorder.session_id, base)
        fields["head_checkpoint_id"] = base or ""  # it leaves the session where it found it
    event = stopped_event(recorder.outcome.get("engine_run_id") or recorder.run_id, recorder.session_id, action)
    recorder.add(event)
    await recorder.finish(status="cancelled", error=REASONS.get(action, action), interrupts=[], **fields)
    # the session's row follows its head: a run left halfway is "failed" with the reason (resumable)
    status = sessions.session_status("failed", await engine.get_metadata(recorder.session_id))
    await sessions.amark(recorder.flow_name, recorder.session_id, status,
                         error=sessions.failure_message(event["error"]) if status == "failed" else None)
    return event
