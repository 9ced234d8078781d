"""The durable event log of a run: its events numbered from 1, as ``RunEvent`` rows
or, with ``FLOWS["EVENTS_REDIS_URL"]``, in Redis streams (:mod:`flows.runs.redis_log`).

Events are written in batches, off the run's path: an event is numbered and
queued at once, and a batch goes to the database at most every
``FLUSH_SECONDS`` on flows' ORM thread pool while the run goes on. A run's
last event (finished, interrupted, failed) is written before the engine
releases the session, so the next run on it numbers its events after it.
Followers in any process read the log (:mod:`flows.runs.follow`).

While its run goes on, a recorder beats the ``Run`` row's heartbeat, so other
processes know it is alive (:mod:`flows.runs.recovery`). Every write is
fenced: it changes a row that is still ``running`` — and for a background run,
still held by this execution (``attempts``) — or nothing, and a recorder that
lost its row (``RunTakenOver``) writes no more.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import socket
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from flows.checkpointer import run_in_orm_thread

from . import redis_log
from flows.events import dumps

logger = logging.getLogger("flows.runs")

#: Whether Channels is installed: batches also go to the sessions' watchers (:mod:`flows.live`).
LIVE = importlib.util.find_spec("channels") is not None
#: Seconds an event may wait before its batch is written.
FLUSH_SECONDS = 0.05
#: How often a running run's heartbeat is renewed.
HEARTBEAT_SECONDS = 2.0
#: Who is writing: a worker's name in ``Run.worker``.
WORKER = f"{socket.gethostname()}:{os.getpid()}"

#: The recorder of the call running in this context (set by whoever starts the call).
current_recorder: ContextVar["Recorder | None"] = ContextVar("flows_run_recorder", default=None)
#: Who starts calls in this context, for runs recorded without a recorder of their own.
current_origin: ContextVar[str] = ContextVar("flows_run_origin", default="other")

TERMINAL = {"run_finished": "succeeded", "interrupted": "interrupted", "run_failed": "failed"}


class RunTakenOver(Exception):
    """The run's row ended, or another execution took it over: this recorder may not write it."""


def new_run_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Recorder:
    """Writes one run's events; an existing row is updated, a new one inserted with the first batch."""

    run_id: str
    flow_name: str
    session_id: str
    #: the fields of a ``Run`` row to insert with the first batch (a run no one created beforehand)
    create: dict[str, Any] | None = None
    last_seq: int = 0
    #: the execution holding the row (background runs: its claim's ``attempts``)
    attempt: int | None = None
    #: write ``run_started`` at once (a recovered run must know its input was applied)
    durable_start: bool = False
    started: bool = False
    lost: bool = False
    outcome: dict[str, Any] = field(default_factory=dict)
    _queued: list[tuple[int, str, str]] = field(default_factory=list)
    #: events the database recorded that the Redis log has not taken yet (``EVENTS_REDIS_URL``)
    _unlogged: list[tuple[int, str, str]] = field(default_factory=list)
    _writing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _scheduled: asyncio.TimerHandle | None = None
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _heart: asyncio.Task[None] | None = None

    # -- events ---------------------------------------------------------------------------------

    def add(self, event: dict[str, Any]) -> int:
        """Numbers and queues ``event``; returns its id."""
        self.last_seq += 1
        self._queued.append((self.last_seq, event["event"], dumps(event)))
        kind = event["event"]
        if kind == "run_started":
            self.started = True
            self.outcome.update(engine_run_id=event["run_id"],
                                base_checkpoint_id=event.get("base_checkpoint_id") or "")
        elif kind == "node_finished" and event.get("checkpoint_id"):
            self.outcome["head_checkpoint_id"] = event["checkpoint_id"]
        elif kind in TERMINAL:
            self.outcome["status"] = TERMINAL[kind]
            if kind == "interrupted":
                self.outcome.update(interrupts=event["interrupts"], head_checkpoint_id=event["checkpoint_id"])
            elif kind == "run_failed":
                error = event.get("error") or {}
                self.outcome["error"] = f"{error.get('type', 'Error')}: {error.get('message', '')}"
                if error.get("type") == "RunSuperseded":  # the engine let a newer call take the session
                    self.outcome["status"] = "cancelled"
        if self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_soon)
        if self._heart is None and not self.lost:
            self._heart = asyncio.ensure_future(self._beat())
        return self.last_seq

    def _flush_soon(self) -> None:
        self._scheduled = None
        task = asyncio.ensure_future(self._flush_logged())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except (DatabaseError, RunTakenOver):
            logger.warning("could not record events of run %s (kept for the next write)", self.run_id,
                           exc_info=True)

    # -- writing --------------------------------------------------------------------------------

    async def flush(self, **run_fields: Any) -> None:
        """Writes what is queued (and ``run_fields`` on the ``Run`` row) in one transaction.

        On a database error nothing is lost: the batch waits for the next write.
        """
        async with self._writing:
            if self.lost:
                raise RunTakenOver(self.run_id)
            batch, self._queued = self._queued, []
            create = self.create
            if not (batch or create is not None or run_fields or self._unlogged):
                return
            key = redis_log.RunKey(self.flow_name, self.session_id, self.run_id)
            try:
                self._unlogged = await run_in_orm_thread(_write, key, create, batch, run_fields, self.attempt,
                                                         self._unlogged)
            except RunTakenOver:
                self.lost = True
                raise
            except DatabaseError:
                self._queued[:0] = batch
                raise
            self.create = None
            if batch and LIVE:
                from flows.live.fanout import publish

                await publish(self.flow_name, self.session_id, self.run_id, batch)

    async def flush_start(self) -> None:
        """Writes ``run_started`` now, with the engine run it began or continued."""
        start = {key: self.outcome[key] for key in ("engine_run_id", "base_checkpoint_id") if key in self.outcome}
        await self.flush(**start)

    async def finish(self, **run_fields: Any) -> None:
        """The run ended: its last events and its outcome, written now (a failure is logged, not raised)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        self.stop_beating()
        await asyncio.gather(*self._background, return_exceptions=True)
        fields = {**self.outcome, **run_fields}
        fields.setdefault("finished_at", timezone.now())
        for attempt in range(3):
            try:
                await self.flush(**fields)
                if not self._unlogged:
                    return
                fields = {}  # written: what is left is for the Redis log
                if attempt == 2:
                    logger.error("run %s ended without its last events in the Redis log", self.run_id)
                    return
                await asyncio.sleep(0.1 * (attempt + 1))
            except RunTakenOver:
                logger.warning("run %s ended elsewhere: its outcome here is not written", self.run_id)
                return
            except DatabaseError:
                if attempt == 2:
                    logger.exception("could not record the end of run %s", self.run_id)
                    return
                await asyncio.sleep(0.1 * (attempt + 1))

    # -- heartbeat ------------------------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.flush(heartbeat_at=timezone.now())
            except RunTakenOver:
                return
            except DatabaseError:
                logger.warning("could not renew the heartbeat of run %s", self.run_id, exc_info=True)

    def stop_beating(self) -> None:
        if self._heart is not None:
            self._heart.cancel()
            self._heart = None


def _write(key: redis_log.RunKey, create: dict[str, Any] | None, batch: list[tuple[int, str, str]],
           run_fields: dict[str, Any], attempt: int | None,
           unlogged: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """The database's part in one transaction, then the Redis log's (when it is on).

    Returns the events the Redis log did not take, for the next write to retry.
    """
    from flows.models import Run, RunEvent

    run_id = key.run_id
    to_redis = redis_log.enabled()
    with transaction.atomic():
        if create is not None:
            pk = Run.objects.create(run_id=run_id, **create).pk
        else:
            held = Run.objects.filter(run_id=run_id, status="running")
            if attempt is not None:
                held = held.filter(attempts=attempt)
            pk = held.values_list("pk", flat=True).first()
            if pk is None:
                raise RunTakenOver(run_id)
        if batch and not to_redis:
            RunEvent.objects.bulk_create(
                [RunEvent(run_id=pk, seq=seq, event=kind, data=data) for seq, kind, data in batch]
            )
        if batch:
            run_fields = {**run_fields, "last_event": batch[-1][0]}
        if run_fields:
            Run.objects.filter(pk=pk).update(**run_fields)
    return _log(key, unlogged + batch) if to_redis else []


def _log(key: redis_log.RunKey, events: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """Appends ``events`` to the Redis log; returns them if Redis could not be reached."""
    from redis.exceptions import RedisError

    if not events:
        return []
    try:
        redis_log.append(key, events)
    except RedisError:
        logger.warning("could not log events of run %s in Redis (kept for the next write)", key.run_id,
                       exc_info=True)
        return events
    return []


def end_unstarted(run_id: str, status: str, error: str, *, only_if: dict[str, Any]) -> bool:
    """Ends a run that is not executing (blocking): its status, and a last ``run_failed`` event.

    ``only_if`` are the fields the row must still have (a compare-and-set);
    returns whether it was ended. Every run's stream thus ends with an event.
    """
    from flows.models import Run, RunEvent

    with transaction.atomic():
        row = Run.objects.select_for_update().filter(run_id=run_id, **only_if).values(
            "pk", "last_event", "flow_name", "session_id", "engine_run_id").first()
        if row is None:
            return False
        event = {"event": "run_failed", "run_id": row["engine_run_id"] or run_id, "session_id": row["session_id"],
                 "node": None, "step": None, "error": {"type": "RunStopped", "message": error, "node": None}}
        last = (row["last_event"] + 1, "run_failed", dumps(event))
        if not redis_log.enabled():
            RunEvent.objects.create(run_id=row["pk"], seq=last[0], event=last[1], data=last[2])
        Run.objects.filter(pk=row["pk"]).update(status=status, error=error, finished_at=timezone.now(),
                                                last_event=last[0])
    if redis_log.enabled():  # followers end on the row's status if this does not reach Redis
        _log(redis_log.RunKey(row["flow_name"], row["session_id"], run_id), [last])
    return True


def implicit_recorder(flow_name: str, event: dict[str, Any]) -> Recorder:
    """A recorder for a call no one prepared one for (the admin, a command, a script)."""
    return new_recorder(flow_name, event["session_id"], run_id=new_run_id(), origin=current_origin.get())


def new_recorder(flow_name: str, session_id: str, *, run_id: str, origin: str, **fields: Any) -> Recorder:
    """A recorder whose ``Run`` row, ``running`` from now, is written with its first events."""
    now = timezone.now()
    create = {"flow_name": flow_name, "session_id": session_id, "origin": origin, "status": "running",
              "started_at": now, "heartbeat_at": now, "worker": WORKER, **fields}
    return Recorder(run_id=run_id, flow_name=flow_name, session_id=session_id, create=create)
