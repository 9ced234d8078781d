"""Executing a background run, in whichever worker process picks its task.

1. **Claim** the ``pending`` run (a compare-and-set ``UPDATE``: a run never
   executes twice at once).
2. **Wait for its turn**: runs on one session go one after another in the order
   they were created. With ``on_busy="interrupt"`` or ``"rollback"`` the runs
   ahead of it are asked to stop (pending ones are cancelled at once).
3. **Run** the flow, recording its events, while a watcher beats the run's
   heartbeat and polls for a stop request (:mod:`flows.runs.stopping`).
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

from django.db.models import F
from django.utils import timezone

from flows import registry
from flows.checkpointer import run_in_orm_thread
from flows.engine import FlowEngine, FlowError

from .recorder import WORKER, Recorder, current_recorder
from .stopping import POLL_SECONDS, RunStopped, end_stopped, stop_request, stop_runs, watch

logger = logging.getLogger("flows.runs")

UNFINISHED = ("pending", "running")


# -- rows (blocking; on the ORM pool) ----------------------------------------------------------


def _claim(run_id: str) -> dict[str, Any] | None:
    from flows.models import Run

    now = timezone.now()
    if not Run.objects.filter(run_id=run_id, status="pending").update(
        status="running", worker=WORKER, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    ):
        return None
    return Run.objects.filter(run_id=run_id).values(
        "pk", "flow_name", "session_id", "input", "has_resume", "resume", "checkpoint_id", "on_busy", "last_event",
        "stop_requested", "attempts", "engine_run_id", "run_id",
    ).get()


def _ahead(run: dict[str, Any]) -> list[dict[str, Any]]:
    from flows.models import Run

    return list(
        Run.objects.filter(flow_name=run["flow_name"], session_id=run["session_id"], pk__lt=run["pk"],
                           status__in=UNFINISHED).values("pk", "run_id", "status", "stop_requested")
    )


# -- the execution ------------------------------------------------------------------------------


async def execute(run_id: str) -> None:
    """Executes the pending run ``run_id``; returns at once if it is not pending any more."""
    run = await run_in_orm_thread(_claim, run_id)
    if run is None:
        return
    recorder = Recorder(run_id, run["flow_name"], run["session_id"], last_seq=run["last_event"], durable_start=True)
    try:
        engine = registry.get_flow(run["flow_name"])
    except registry.FlowNotFound as error:
        await recorder.finish(status="failed", error=str(error))
        return
    try:
        await _wait_for_turn(run)
        if run["engine_run_id"] and not await _continue_where_it_stopped(engine, run, recorder):
            return
        await _run(engine, run, recorder)
    except RunStopped as stop:
        await end_stopped(engine, recorder, stop.action)
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
            await run_in_orm_thread(stop_runs, run["flow_name"], run["session_id"], run["on_busy"],
                                    below_pk=run["pk"])
            asked = True
        action = await run_in_orm_thread(stop_request, run["run_id"], True)
        if action:
            raise RunStopped(action)
        await asyncio.sleep(POLL_SECONDS)


async def _continue_where_it_stopped(engine: FlowEngine, run: dict[str, Any], recorder: Recorder) -> bool:
    """An execution after a crash: what the run asked is saved already; continue its engine run.

    Returns whether there is anything left to run (the run's input and answer
    are then not applied again).
    """
    head = await engine.get_metadata(run["session_id"])
    if head is None or head.run_id != run["engine_run_id"]:
        await recorder.finish(status="cancelled", error="the session moved on before the run could be resumed")
        return False
    if head.finished or head.interrupt:
        await recorder.finish(status="interrupted" if head.interrupt else "succeeded",
                              head_checkpoint_id=head.checkpoint_id, interrupts=[dict(q) for q in head.interrupt])
        return False
    run.update(input=None, has_resume=False, checkpoint_id="")
    return True


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
    watcher = asyncio.ensure_future(watch(run["run_id"], work))
    try:
        await work
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled() and watcher.result():
            raise RunStopped(watcher.result()) from None
        raise
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def _drain(events: Any) -> None:
    async for _ in events:
        pass
