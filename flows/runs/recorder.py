"""The durable event log of a run: its events as ``RunEvent`` rows, numbered from 1.

Events are written in batches, off the run's path: an event is numbered and
queued at once, and a batch goes to the database at most every
``FLUSH_SECONDS`` on flows' ORM thread pool while the run goes on. A run's
last event (finished, interrupted, failed) is written before the engine
releases the session, so the next run on it numbers its rows after it.
Followers in any process read the rows (:mod:`flows.runs.follow`).
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

from django.db import transaction
from django.utils import timezone

from flows.checkpointer import run_in_orm_thread
from flows.events import dumps

logger = logging.getLogger("flows.runs")

#: Whether Channels is installed: batches also go to the sessions' watchers (:mod:`flows.live`).
LIVE = importlib.util.find_spec("channels") is not None
#: Seconds an event may wait before its batch is written.
FLUSH_SECONDS = 0.05
#: Who is writing: a worker's name in ``Run.worker``.
WORKER = f"{socket.gethostname()}:{os.getpid()}"

#: The recorder of the call running in this context (set by whoever starts the call).
current_recorder: ContextVar["Recorder | None"] = ContextVar("flows_run_recorder", default=None)
#: Who starts calls in this context, for runs recorded without a recorder of their own.
current_origin: ContextVar[str] = ContextVar("flows_run_origin", default="other")

TERMINAL = {"run_finished": "succeeded", "interrupted": "interrupted", "run_failed": "failed"}


def new_run_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Recorder:
    """Writes one run's events; created ``pending`` rows are updated, others inserted on first write."""

    run_id: str
    flow_name: str
    session_id: str
    #: the fields of a ``Run`` row to insert with the first batch (a run no one created beforehand)
    create: dict[str, Any] | None = None
    last_seq: int = 0
    #: write ``run_started`` at once (a recovered run must know its input was applied)
    durable_start: bool = False
    started: bool = False
    outcome: dict[str, Any] = field(default_factory=dict)
    _queued: list[tuple[int, str, str]] = field(default_factory=list)
    _writing: asyncio.Lock = field(default_factory=asyncio.Lock)
    _scheduled: asyncio.TimerHandle | None = None
    _background: set[asyncio.Task[None]] = field(default_factory=set)

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
        if self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_soon)
        return self.last_seq

    def _flush_soon(self) -> None:
        self._scheduled = None
        task = asyncio.ensure_future(self.flush())
        self._background.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("could not record events of run %s", self.run_id, exc_info=task.exception())

    async def flush(self, **run_fields: Any) -> None:
        """Writes what is queued (and ``run_fields`` on the ``Run`` row) in one transaction."""
        async with self._writing:
            batch, self._queued = self._queued, []
            create, self.create = self.create, None
            if batch or create is not None or run_fields:
                await run_in_orm_thread(_write, self.run_id, create, batch, run_fields)
            if batch and LIVE:
                from flows.live.fanout import publish

                await publish(self.flow_name, self.session_id, self.run_id, batch)

    async def flush_start(self) -> None:
        """Writes ``run_started`` now, with the engine run it began or continued."""
        start = {key: self.outcome[key] for key in ("engine_run_id", "base_checkpoint_id") if key in self.outcome}
        await self.flush(**start)

    async def finish(self, **run_fields: Any) -> None:
        """The run ended: its last events and its outcome, written now."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        await asyncio.gather(*self._background, return_exceptions=True)  # failures are logged by _written
        fields = {**self.outcome, **run_fields}
        fields.setdefault("finished_at", timezone.now())
        await self.flush(**fields)


def _write(run_id: str, create: dict[str, Any] | None, batch: list[tuple[int, str, str]],
           run_fields: dict[str, Any]) -> None:
    from flows.models import Run, RunEvent

    with transaction.atomic():
        if create is not None:
            run = Run.objects.create(run_id=run_id, **create)
            pk = run.pk
        else:
            pk = Run.objects.filter(run_id=run_id).values_list("pk", flat=True).get()
        if batch:
            RunEvent.objects.bulk_create(
                [RunEvent(run_id=pk, seq=seq, event=kind, data=data) for seq, kind, data in batch]
            )
            run_fields = {**run_fields, "last_event": batch[-1][0]}
        if run_fields:
            Run.objects.filter(pk=pk).update(**run_fields)


def implicit_recorder(flow_name: str, event: dict[str, Any]) -> Recorder:
    """A recorder for a call no one prepared one for (the admin, a command, a script)."""
    return new_recorder(flow_name, event["session_id"], run_id=new_run_id(), origin=current_origin.get())


def new_recorder(flow_name: str, session_id: str, *, run_id: str, origin: str, **fields: Any) -> Recorder:
    """A recorder whose ``Run`` row, ``running`` from now, is written with its first events."""
    now = timezone.now()
    create = {"flow_name": flow_name, "session_id": session_id, "origin": origin, "status": "running",
              "started_at": now, "heartbeat_at": now, "worker": WORKER, **fields}
    return Recorder(run_id=run_id, flow_name=flow_name, session_id=session_id, create=create)

