"""Reading runs' events as they are written, from any process: replay, then follow.

Followers read the ``RunEvent`` rows (:mod:`flows.runs.recorder`), every
``POLL_SECONDS`` while nothing new is there, so a follower in another process
than the run's sees each batch within about ``FLUSH_SECONDS + POLL_SECONDS``.
A run's last events and its end are written in one transaction: a follower
that saw the run ended and then found no new row has seen everything.

With ``FLOWS["EVENTS_REDIS_URL"]`` the same functions read Redis streams
instead (:mod:`flows.runs.redis_log`), blocking until a batch is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from flows.checkpointer import run_in_orm_thread

from . import redis_log
from .redis_log import RunKey

POLL_SECONDS = 0.1
BATCH = 500
ENDED = ("interrupted", "succeeded", "failed", "cancelled")


class StoredEvent(NamedTuple):
    id: int  #: the run's event id (from 1), or for a session's watcher the row's id
    event: str
    data: str  #: the event as JSON
    run_id: str = ""  #: (a session's watcher) the run it belongs to
    seq: int = 0  #: (a session's watcher) its id within that run


def _run_rows(run_pk: int, after: int) -> tuple[str, list[StoredEvent]]:
    from flows.models import Run, RunEvent

    status = Run.objects.filter(pk=run_pk).values_list("status", flat=True).get()
    rows = RunEvent.objects.filter(run_id=run_pk, seq__gt=after).order_by("seq").values_list("seq", "event", "data")
    return status, [StoredEvent(*row) for row in rows[:BATCH]]


def _status(run_pk: int) -> str:
    from flows.models import Run

    return Run.objects.filter(pk=run_pk).values_list("status", flat=True).get()


async def follow_run(run_pk: int, key: RunKey, after: int = 0, *,
                     idle: float | None = None) -> AsyncIterator[StoredEvent | None]:
    """The run's events after id ``after``, then each new one, until the run has ended.

    With ``idle``, ``None`` comes after that many seconds without an event (to
    send a keep-alive).
    """
    if redis_log.enabled():
        async def ended() -> bool:
            return await run_in_orm_thread(_status, run_pk) in ENDED

        async for logged in redis_log.follow_run_stream(key, after, idle=idle, ended=ended):
            yield None if logged is None else StoredEvent(*logged)
        return
    quiet = 0.0
    while True:
        status, rows = await run_in_orm_thread(_run_rows, run_pk, after)
        for row in rows:
            yield row
            after = row.id
        if rows:
            quiet = 0.0
            continue
        if status in ENDED:
            return
        await asyncio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS
        if idle is not None and quiet >= idle:
            quiet = 0.0
            yield None


def _between(run_id: str, after: int, before: int) -> list[StoredEvent]:
    from flows.models import RunEvent

    rows = (RunEvent.objects.filter(run__run_id=run_id, seq__gt=after, seq__lt=before).order_by("seq")
            .values_list("seq", "event", "data"))
    return [StoredEvent(*row) for row in rows]


async def events_between(key: RunKey, after: int, before: int) -> list[StoredEvent]:
    """The run's stored events with ``after < id < before`` (what a follower missed)."""
    if redis_log.enabled():
        return [StoredEvent(*row) for row in await redis_log.read_run(key, after, before)]
    return await run_in_orm_thread(_between, key.run_id, after, before)


def _session_events(flow_name: str, session_id: str) -> Any:
    from flows.models import RunEvent

    return RunEvent.objects.filter(run__flow_name=flow_name, run__session_id=session_id)


def _newest(flow_name: str, session_id: str) -> int:
    return _session_events(flow_name, session_id).order_by("-pk").values_list("pk", flat=True).first() or 0


async def newest_session_event(flow_name: str, session_id: str) -> int:
    """The id a session's watcher starts after, to see what comes from now on."""
    if redis_log.enabled():
        return await redis_log.newest_in_session(flow_name, session_id)
    return await run_in_orm_thread(_newest, flow_name, session_id)


def _session_rows(flow_name: str, session_id: str, after: int | None) -> tuple[int, list[StoredEvent]]:
    if after is None:  # from now on
        return _newest(flow_name, session_id), []
    rows = (_session_events(flow_name, session_id).filter(pk__gt=after).order_by("pk")
            .values_list("pk", "event", "data", "run__run_id", "seq"))
    return after, [StoredEvent(*row) for row in rows[:BATCH]]


async def follow_session(
    flow_name: str, session_id: str, after: int | None = None, *, idle: float | None = None
) -> AsyncIterator[StoredEvent | None]:
    """Every run's events on the session after ``after`` (``None``: from now), forever.

    The ids are the session's own (rows' ids, or the Redis stream's counter).
    ``idle`` as for :func:`follow_run`.
    """
    if redis_log.enabled():
        async for row in _follow_session_stream(flow_name, session_id, after, idle):
            yield row
        return
    after, rows = await run_in_orm_thread(_session_rows, flow_name, session_id, after)
    quiet = 0.0
    while True:
        for row in rows:
            yield row
            after = row.id
        if rows:
            quiet = 0.0
        else:
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if idle is not None and quiet >= idle:
                quiet = 0.0
                yield None
        _, rows = await run_in_orm_thread(_session_rows, flow_name, session_id, after)


async def _follow_session_stream(flow_name: str, session_id: str, after: int | None,
                                 idle: float | None) -> AsyncIterator[StoredEvent | None]:
    if after is None:
        after = await redis_log.newest_in_session(flow_name, session_id)
    quiet = 0.0
    while True:
        wait = redis_log.BLOCK_SECONDS if idle is None else min(redis_log.BLOCK_SECONDS, max(idle - quiet, 0.001))
        rows = await redis_log.wait_for_session(flow_name, session_id, after, wait)
        for row in rows:
            yield StoredEvent(*row)
            after = row[0]
        if rows:
            quiet = 0.0
            continue
        quiet += wait
        if idle is not None and quiet >= idle:
            quiet = 0.0
            yield None
