"""Starting a call on a session, as the REST API and the WebSocket both do.

:func:`claim_session` finds the session's row, or makes it for the caller;
:func:`start_here` prepares a call that runs in this process (recorded, stoppable);
:func:`start_in_background` records a pending run and hands it to a task worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError

from flows import sessions
from flows.checkpointer import run_in_orm_thread
from flows.conf import flows_settings
from flows.engine import CheckpointNotFound, FlowEngine, InvalidInput, NothingToResume, SessionBusy

if TYPE_CHECKING:
    from flows.base_models import AbstractFlowSession

from . import records
from .detached import RunEvents, Stoppable
from .recorder import Recorder, current_recorder, new_recorder, new_run_id
from .stopping import BY_NEWER_RUN, end_stopped, engine_on_busy, stop_runs, wait_until_ended

logger = logging.getLogger("flows.runs")

#: How long a call waits for the runs it asked to stop before the engine takes the session over.
STOP_WAIT_SECONDS = 5.0


async def claim_session(
    flow: str, engine: FlowEngine, session_id: str, user: Any, options: dict[str, Any],
    refuse: Callable[[], None] = lambda: None,
) -> AbstractFlowSession:
    """The session's row for a call, created for ``user`` on first use (the seed page's behaviour).

    Raises :class:`flows.sessions.SessionNotFound` for a session ``user`` may
    not reach. Whatever refuses the call (``refuse()`` raises) does so before a
    row is made: a new session has no question to answer and no checkpoint to
    fork from.
    """
    row = await sessions.aget(flow, session_id)
    if row is not None:
        if not sessions.may_access(user, row.owner_id):
            raise sessions.SessionNotFound(session_id)
        refuse()
        return row
    if await engine.get_metadata(session_id) is not None:  # made outside the site: no owner
        if not sessions.may_access(user, None):
            raise sessions.SessionNotFound(session_id)
        refuse()
        return (await sessions.acreate(flow, session_id, None))[0]
    if "resume" in options:
        raise NothingToResume(f"session {session_id!r} has no pending interrupt to resume")
    if "checkpoint_id" in options:
        raise CheckpointNotFound(f"no checkpoint {options['checkpoint_id']!r} in session {session_id!r}")
    refuse()
    row, created = await sessions.acreate(flow, session_id, sessions.owner_id_for(user))
    if not created and not sessions.may_access(user, row.owner_id):
        raise sessions.SessionNotFound(session_id)
    return row


def run_request_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What a call asked (``input``, ``resume``, ``checkpoint_id``, ``on_busy``), as ``Run`` fields."""
    return {"input": data.get("input"), "has_resume": data.get("resume") is not None, "resume": data.get("resume"),
            "checkpoint_id": data.get("checkpoint_id") or "", "on_busy": data.get("on_busy") or flows_settings.ON_BUSY}


def call_options(data: dict[str, Any]) -> dict[str, Any]:
    """The engine's keyword arguments for what a call asked."""
    options: dict[str, Any] = {"on_busy": data.get("on_busy") or flows_settings.ON_BUSY}
    if data.get("resume") is not None:
        options["resume"] = data["resume"]
    if data.get("checkpoint_id"):
        options["checkpoint_id"] = data["checkpoint_id"]
    return options


async def start_here(
    engine: FlowEngine, flow: str, session_id: str, user: Any, data: dict[str, Any],
    apply_state: dict[str, Any] | None, *, origin: str,
) -> RunEvents:
    """Starts a call in this process, recorded as a ``Run`` and stoppable; returns its events.

    ``interrupt`` / ``rollback`` ask the runs going on to stop first, then wait for the session.
    With ``RECORD_RUNS`` off nothing is recorded, and the call cannot be stopped by its id.
    """
    options = call_options(data)
    if not flows_settings.RECORD_RUNS:
        return RunEvents(engine.stream(apply_state, session_id=session_id, **options))
    if options["on_busy"] == "reject":  # a pending background run counts: it runs next
        await run_in_orm_thread(refuse_if_busy, flow, session_id)
    recorder = new_recorder(flow, session_id, run_id=new_run_id(), origin=origin, owner_id=sessions.owner_id_for(user),
                            **run_request_fields(data))
    await recorder.flush()  # its row now: it can be listed and stopped while it waits for the session
    recorder.start_beating()  # alive while it waits, too
    try:
        if options["on_busy"] in BY_NEWER_RUN:
            asked = await run_in_orm_thread(stop_runs, flow, session_id, options["on_busy"], keep=recorder.run_id)
            ended = await wait_until_ended(asked, STOP_WAIT_SECONDS)
            options["on_busy"] = engine_on_busy(options["on_busy"], ended)
    except BaseException:  # a database error, or the request went away while the runs ahead stopped
        await _forget(recorder)
        raise
    stoppable = Stoppable(recorder.run_id, lambda action: end_stopped(engine, recorder, action))
    token = current_recorder.set(recorder)  # the run's task copies it: the run is recorded with who asked and what
    try:
        events = engine.stream(apply_state, session_id=session_id, run_id=recorder.run_id, **options)
        return RunEvents(_unrecorded_if_refused(events, recorder), stoppable)
    finally:
        current_recorder.reset(token)


#: What the engine raises for a call it refuses before it starts: nothing was written.
REFUSALS = (InvalidInput, CheckpointNotFound, SessionBusy)


async def _unrecorded_if_refused(
    events: AsyncIterator[dict[str, Any]], recorder: Recorder,
) -> AsyncIterator[dict[str, Any]]:
    """``events``; a call the engine refuses before it starts (nothing to resume, no such
    checkpoint, input the reducers refuse, a busy session) leaves no ``Run``, as one refused
    before its row was made: left ``running``, it would hold up the session's next runs."""
    try:
        async for event in events:
            yield event
    except REFUSALS:
        if not recorder.started:
            await _forget(recorder)
        raise


async def _forget(recorder: Recorder) -> None:
    """Deletes the row of a call that never started; a database error is logged (the call's own
    error is what its caller must see), and recovery ends the row once its heartbeat stops."""
    recorder.stop_beating()
    try:
        await asyncio.shield(run_in_orm_thread(records.forget, recorder.run_id))
    except DatabaseError:
        logger.warning("could not delete the record of refused call %s", recorder.run_id, exc_info=True)


def start_in_background(flow: str, session_id: str, user: Any, data: dict[str, Any],
                        apply_state: dict[str, Any] | None) -> str:
    """Records a pending background run and enqueues it (blocking); returns its id.

    ``reject`` refuses with :class:`SessionBusy` while another run is pending or running.
    """
    from flows.models import Run

    from .tasks import enqueue

    fields = {**run_request_fields(data), "input": apply_state}
    if fields["on_busy"] == "reject":
        refuse_if_busy(flow, session_id)
    run_id = new_run_id()
    row = Run.objects.create(run_id=run_id, flow_name=flow, session_id=session_id, origin="background",
                             owner_id=sessions.owner_id_for(user), **fields)
    if fields["on_busy"] in BY_NEWER_RUN:  # now, not when a worker gets to it: the only worker may be busy with them
        stop_runs(flow, session_id, fields["on_busy"], below_pk=row.pk)
    enqueue(run_id)
    return run_id


def refuse_if_busy(flow: str, session_id: str) -> None:
    """``on_busy="reject"``: :class:`SessionBusy` while another run is pending or running (blocking)."""
    from flows.models import Run

    if Run.objects.filter(flow_name=flow, session_id=session_id, status__in=("pending", "running")).exists():
        raise SessionBusy(f"session {session_id!r} is busy: another run is pending or running")
