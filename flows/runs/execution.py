"""Executing a background run, in whichever worker process picks its task.

1. **Claim** the ``pending`` run (a compare-and-set ``UPDATE``: a run never
   executes twice at once).
2. **Wait for its turn**: runs on one session go one after another in the order
   they were created. With ``on_busy="interrupt"`` or ``"rollback"`` the runs
   ahead of it are asked to stop (pending ones are cancelled at once).
3. **Run** the flow, recording its events, while a watcher beats the run's
   heartbeat and polls for a stop request; a stop cancels the run at its next
   await point (within ``STOP_POLL_SECONDS`` plus that await).
4. **End**: succeeded, interrupted (a question is pending), failed, or
   cancelled — after a ``rollback`` stop, with the run's checkpoints deleted.

A worker that dies leaves its run ``running`` with a heartbeat that stops;
:mod:`flows.runs.recovery` makes it ``pending`` again and enqueues it, and the
next execution continues from the run's last checkpoint (the engine resumes an
unfinished head exactly) once the dead worker's session lease has expired.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.utils import timezone

from flows import registry
from flows.checkpointer import run_in_orm_thread
from flows.engine import FlowEngine, FlowError

from .recorder import WORKER, Recorder, current_recorder

logger = logging.getLogger("flows.runs")

#: How often a running run looks for a stop request, and a waiting one for its turn.
STOP_POLL_SECONDS = 0.2
#: How often a running run tells the others that its worker is alive.
HEARTBEAT_SECONDS = 2.0
UNFINISHED = ("pending", "running")


class Stopped(Exception):
    """The run was asked to stop (``action`` is ``cancel``, ``interrupt`` or ``rollback``)."""

    def __init__(self, action: str) -> None:
        super().__init__(action)
        self.action = action


# -- rows (blocking; on the ORM pool) ----------------------------------------------------------


def _claim(run_id: str) -> dict[str, Any] | None:
    from flows.models import Run

    now = timezone.now()
    if not Run.objects.filter(run_id=run_id, status="pending").update(
        status="running", worker=WORKER, started_at=now, heartbeat_at=now
    ):
        return None
    return Run.objects.filter(run_id=run_id).values(
        "pk", "flow_name", "session_id", "input", "has_resume", "resume", "checkpoint_id", "on_busy", "last_event",
        "stop_requested",
    ).get()


def _ahead(run: dict[str, Any]) -> list[dict[str, Any]]:
    from flows.models import Run

    return list(
        Run.objects.filter(flow_name=run["flow_name"], session_id=run["session_id"], pk__lt=run["pk"],
                           status__in=UNFINISHED).values("pk", "run_id", "status", "stop_requested")
    )


def _stop_ahead(run: dict[str, Any], action: str) -> None:
    """``interrupt`` / ``rollback``: the runs ahead stop (pending ones at once)."""
    from flows.models import Run

    ahead = Run.objects.filter(flow_name=run["flow_name"], session_id=run["session_id"], pk__lt=run["pk"])
    ahead.filter(status="pending").update(status="cancelled", finished_at=timezone.now(),
                                          error=f"superseded by run {run['pk']} ({action})")
    ahead.filter(status="running", stop_requested="").update(stop_requested=action)


def _beat(pk: int, beat: bool) -> str:
    """The run's stop request ('' if none); with ``beat``, its heartbeat is renewed too."""
    from flows.models import Run

    if beat:
        Run.objects.filter(pk=pk).update(heartbeat_at=timezone.now())
    return Run.objects.filter(pk=pk).values_list("stop_requested", flat=True).get()


# -- the execution ------------------------------------------------------------------------------


async def execute(run_id: str) -> None:
    """Executes the pending run ``run_id``; returns at once if it is not pending any more."""
    run = await run_in_orm_thread(_claim, run_id)
    if run is None:
        return
    recorder = Recorder(run_id, run["flow_name"], run["session_id"], last_seq=run["last_event"])
    try:
        engine = registry.get_flow(run["flow_name"])
    except registry.FlowNotFound as error:
        await recorder.finish(status="failed", error=str(error))
        return
    try:
        await _wait_for_turn(run)
        await _run(engine, run, recorder)
    except Stopped as stop:
        await _end_stopped(engine, run, recorder, stop.action)
    except FlowError:
        await recorder.finish()  # its run_failed event said how
    except Exception as error:  # a bug: the run failed, the worker goes on
        logger.exception("run %s failed", run_id)
        await recorder.finish(status="failed", error=f"{type(error).__name__}: {error}")


async def _wait_for_turn(run: dict[str, Any]) -> None:
    """Until no run created before this one on the session is unfinished."""
    asked = False
    while True:
        ahead = await run_in_orm_thread(_ahead, run)
        if not ahead:
            return
        if run["on_busy"] in ("interrupt", "rollback") and not asked:
            await run_in_orm_thread(_stop_ahead, run, run["on_busy"])
            asked = True
        action = await run_in_orm_thread(_beat, run["pk"], True)
        if action:
            raise Stopped(action)
        await asyncio.sleep(STOP_POLL_SECONDS)


async def _run(engine: FlowEngine, run: dict[str, Any], recorder: Recorder) -> None:
    options: dict[str, Any] = {"on_busy": "wait", "run_id": recorder.run_id}
    if run["has_resume"]:
        options["resume"] = run["resume"]
    if run["checkpoint_id"]:
        options["checkpoint_id"] = run["checkpoint_id"]
    token = current_recorder.set(recorder)
    try:
        events = engine.stream(run["input"], session_id=run["session_id"], **options)
        work = asyncio.ensure_future(_drain(events))
    finally:
        current_recorder.reset(token)
    watcher = asyncio.ensure_future(_watch(run["pk"], work))
    try:
        await work
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled() and watcher.result():
            raise Stopped(watcher.result()) from None
        raise
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def _drain(events: Any) -> None:
    async for _ in events:
        pass


async def _watch(pk: int, work: asyncio.Future[None]) -> str:
    """Beats the heartbeat and polls for a stop request; cancels ``work`` when asked to stop."""
    loop = asyncio.get_running_loop()
    next_beat = loop.time()
    while not work.done():
        beat = loop.time() >= next_beat
        if beat:
            next_beat = loop.time() + HEARTBEAT_SECONDS
        action = await run_in_orm_thread(_beat, pk, beat)
        if action:
            work.cancel()
            return action
        await asyncio.sleep(STOP_POLL_SECONDS)
    return ""


async def _end_stopped(engine: FlowEngine, run: dict[str, Any], recorder: Recorder, action: str) -> None:
    """A stopped run is cancelled; after ``rollback`` what it checkpointed is gone."""
    error = {"cancel": "cancelled", "interrupt": "stopped by a newer run (interrupt)",
             "rollback": "stopped and rolled back"}.get(action, action)
    if action == "rollback":
        await discard_after(engine, run["session_id"], recorder.outcome.get("base_checkpoint_id") or None)
    await recorder.finish(status="cancelled", error=error, interrupts=[])


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


def mark_stop(run_id: str, action: str) -> int:
    """Asks a run to stop (blocking): a pending run is cancelled at once; returns rows changed."""
    from flows.models import Run

    now = timezone.now()
    cancelled = Run.objects.filter(run_id=run_id, status="pending").update(
        status="cancelled", error="cancelled before it started", finished_at=now
    )
    return cancelled or Run.objects.filter(run_id=run_id, status="running").update(stop_requested=action)

