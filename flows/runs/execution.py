"""Executing a background run, in whichever worker process picks its task.

1. **Claim** the ``pending`` run (a compare-and-set ``UPDATE``: a run never
   executes twice at once).
2. **Wait for its turn**: runs on one session go one after another in the order
   they were created. With ``on_busy="interrupt"`` or ``"rollback"`` the runs
   ahead of it were asked to stop when it was created
   (:func:`flows.runs.starting.start_in_background`), so it waits for them to stop.
3. **Run** the flow, recording its events, while a watcher beats the run's
   heartbeat and polls for a stop request (:mod:`flows.runs.stopping`).
4. **End**: succeeded, interrupted (a question is pending), failed, or
   cancelled — after a ``rollback`` stop, with the run's checkpoints deleted.

A worker that dies leaves its run ``running`` with a heartbeat that stops;
:mod:`flows.runs.recovery` makes it ``pending`` again, it is enqueued, and the
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
from .recovery import recover
from .stopping import (
    BY_NEWER_RUN,
    POLL_SECONDS,
    RunStopped,
    end_stopped,
    engine_on_busy,
    stop_request,
    stopped_event,
    watch,
)

logger = logging.getLogger("flows.runs")

UNFINISHED = ("pending", "running")
#: How soon a run that went back to the queue is tried again.
REQUEUE_SECONDS = 0.5


# -- rows (blocking; on the ORM pool) ----------------------------------------------------------


def _claim(run_id: str) -> dict[str, Any] | None:
    from flows.models import Run

    now = timezone.now()
    if not Run.objects.filter(run_id=run_id, status="pending").update(
        status="running", worker=WORKER, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    ):
        return None
    return dict(Run.objects.filter(run_id=run_id).values(
        "pk", "flow_name", "session_id", "input", "has_resume", "resume", "checkpoint_id", "on_busy", "last_event",
        "stop_requested", "attempts", "engine_run_id", "base_checkpoint_id", "run_id",
    ).get())


def _requeue(run: dict[str, Any]) -> bool:
    """Back to ``pending`` (for the queue to try again soon): the worker is not held while a run ahead waits."""
    from flows.models import Run

    return bool(Run.objects.filter(pk=run["pk"], status="running", attempts=run["attempts"]).update(
        status="pending", worker=""))


def _ahead(run: dict[str, Any]) -> list[dict[str, Any]]:
    from flows.models import Run

    return [
        dict(row)
        for row in Run.objects.filter(flow_name=run["flow_name"], session_id=run["session_id"], pk__lt=run["pk"],
                                      status__in=UNFINISHED).values("pk", "run_id", "status", "stop_requested")
    ]


#: ``(run id, seconds from now)``: a run the queue must take (again)
ToEnqueue = list[tuple[str, float]]


class Requeued(Exception):
    """The run went back to ``pending`` (a run ahead has not started yet); ``runs`` are for the queue."""

    def __init__(self, runs: ToEnqueue) -> None:
        super().__init__(runs)
        self.runs = runs


# -- the execution ------------------------------------------------------------------------------


async def execute(run_id: str) -> ToEnqueue:
    """Executes the pending run ``run_id``; returns at once if it is not pending any more.

    Returns the runs the queue must take: usually none; this one again, a
    little later, when it had to wait for a run ahead that no worker has
    started, and runs ahead whose worker died (made ``pending`` again).
    """
    run = await run_in_orm_thread(_claim, run_id)
    if run is None:
        return []
    recorder = Recorder(run_id, run["flow_name"], run["session_id"], last_seq=run["last_event"],
                        attempt=run["attempts"], durable_start=True)
    if run["engine_run_id"]:  # an execution after a crash: the run began before
        recorder.outcome.update(engine_run_id=run["engine_run_id"], base_checkpoint_id=run["base_checkpoint_id"])
    try:
        engine = registry.get_flow(run["flow_name"])
    except registry.FlowNotFound as error:
        recorder.add(stopped_event(run_id, run["session_id"], str(error), kind="FlowNotFound"))
        await recorder.finish(status="failed", error=str(error))
        return []
    recorder.start_beating()  # alive while it waits for its turn or the session, too
    try:
        if run["stop_requested"]:  # asked to stop while no worker had it
            raise RunStopped(run["stop_requested"])
        await _wait_for_turn(run)
        if await _continue_where_it_stopped(engine, run, recorder):
            await _run(engine, run, recorder)
    except Requeued as requeued:
        return requeued.runs
    except RunStopped as stop:
        await end_stopped(engine, recorder, stop.action)
    except FlowError as error:
        if "status" in recorder.outcome:
            await recorder.finish()  # its run_failed event said how
        else:  # refused before it began (nothing to resume, an unknown checkpoint...)
            message = f"{type(error).__name__}: {error}"
            recorder.add(stopped_event(run_id, run["session_id"], message, kind=type(error).__name__))
            await recorder.finish(status="failed", error=message)
    except Exception as error:  # a bug: the run failed, the worker goes on to the next
        logger.exception("run %s failed", run_id)
        message = f"{type(error).__name__}: {error}"
        recorder.add(stopped_event(run_id, run["session_id"], message, kind=type(error).__name__))
        await recorder.finish(status="failed", error=message)
    finally:
        recorder.stop_beating()  # finish() stops it too; not a requeued or cancelled execution
    return []


async def _wait_for_turn(run: dict[str, Any]) -> None:
    """Until no run created before this one on the session is unfinished.

    A run ahead that has not started means this worker would wait for a run
    the queue has not given anyone (perhaps to this very worker, after this
    one): this run goes back to the queue instead (:class:`Requeued`). So
    does it when a run ahead lost its worker (that run is made pending too).
    """
    while True:
        ahead = await run_in_orm_thread(_ahead, run)
        if not ahead:
            return
        recovered = await run_in_orm_thread(recover, [other["run_id"] for other in ahead])
        if recovered.enqueued or any(other["status"] == "pending" for other in ahead):
            again = [(run["run_id"], REQUEUE_SECONDS)] if await run_in_orm_thread(_requeue, run) else []
            raise Requeued([(run_id, 0.0) for run_id in recovered.enqueued] + again)
        action = await run_in_orm_thread(stop_request, run["run_id"], True)
        if action:
            raise RunStopped(action)
        await asyncio.sleep(POLL_SECONDS)


async def _continue_where_it_stopped(engine: FlowEngine, run: dict[str, Any], recorder: Recorder) -> bool:
    """After a crash, what the run asked is saved already: it continues its engine run, or it is over.

    Returns whether there is anything to run (the run's input and answer are
    then not applied again). A first execution always runs.
    """
    engine_run = run["engine_run_id"]
    head = await engine.get_metadata(run["session_id"])
    if not engine_run and head is not None and head.run_id == run["run_id"] and not head.finished:
        engine_run = run["run_id"]  # it crashed between saving its input and recording its start
    if not engine_run:
        return True
    if head is None or head.run_id != engine_run:
        message = "the session moved on before the run could be resumed"
        recorder.add(stopped_event(engine_run, run["session_id"], message))
        await recorder.finish(status="cancelled", error=message)
        return False
    if head.finished or head.interrupt:  # it ended, but its end was never recorded
        state = await engine.get_state(run["session_id"]) or {}
        questions = [dict(q) for q in head.interrupt]
        state.pop("__interrupt__", None)
        base = {"run_id": engine_run, "session_id": run["session_id"], "node": head.node, "step": head.step}
        if questions:
            recorder.add({"event": "interrupted", **base, "interrupts": questions,
                          "checkpoint_id": head.checkpoint_id, "state": state})
        else:
            recorder.add({"event": "run_finished", **base, "state": state})
        await recorder.finish(head_checkpoint_id=head.checkpoint_id)
        return False
    run.update(input=None, has_resume=False, checkpoint_id="", on_busy="wait")  # continue it, do not start over
    return True


async def _run(engine: FlowEngine, run: dict[str, Any], recorder: Recorder) -> None:
    # the runs ahead stopped, and rolled themselves back if asked to: what is left is
    # for the engine to start over on (interrupt, rollback), or to continue (wait)
    on_busy = engine_on_busy(run["on_busy"], True) if run["on_busy"] in BY_NEWER_RUN else "wait"
    options: dict[str, Any] = {"on_busy": on_busy, "run_id": recorder.run_id}
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
