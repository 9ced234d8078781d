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

from django.db import DatabaseError
from django.utils import timezone

from flows.checkpointer import run_in_orm_thread
from flows.events import dumps

from . import records, redis_log
from .records import RunTakenOver

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
current_recorder: ContextVar[Recorder | None] = ContextVar("flows_run_recorder", default=None)
#: Who starts calls in this context, for runs recorded without a recorder of their own.
current_origin: ContextVar[str] = ContextVar("flows_run_origin", default="other")

TERMINAL = {"run_finished": "succeeded", "interrupted": "interrupted", "run_failed": "failed"}


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
    _pk: int | None = None
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
        self.start_beating()
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
                self._pk, self._unlogged = await run_in_orm_thread(records.write, key, self._pk, create, batch,
                                                                   run_fields, self.attempt, self._unlogged)
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

    def start_beating(self) -> None:
        """Beats the heartbeat from now on (idempotent): also while the call waits for its session,
        before any event, or recovery would take it for a run whose process died."""
        if self._heart is None and not self.lost:
            self._heart = asyncio.ensure_future(self._beat())

    def stop_beating(self) -> None:
        if self._heart is not None:
            self._heart.cancel()
            self._heart = None


def implicit_recorder(flow_name: str, event: dict[str, Any]) -> Recorder:
    """A recorder for a call no one prepared one for (the admin, a command, a script)."""
    return new_recorder(flow_name, event["session_id"], run_id=new_run_id(), origin=current_origin.get())


def new_recorder(flow_name: str, session_id: str, *, run_id: str, origin: str, **fields: Any) -> Recorder:
    """A recorder whose ``Run`` row, ``running`` from now, is written with its first events."""
    now = timezone.now()
    create = {"flow_name": flow_name, "session_id": session_id, "origin": origin, "status": "running",
              "started_at": now, "heartbeat_at": now, "worker": WORKER, **fields}
    return Recorder(run_id=run_id, flow_name=flow_name, session_id=session_id, create=create)
