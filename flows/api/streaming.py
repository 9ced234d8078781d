"""Running a flow for a request: to its end as one JSON answer, or live as server-sent events.

Both read the engine's ``stream()``, so the JSON answer knows the run's id and
its last checkpoint without another read, and the event stream is made of
exactly the events the engine yields (DESIGN.md: run_started, node_started,
chunk, node_finished, interrupted, run_finished, run_failed).

A run started by a request is driven by a task of its own (:class:`RunEvents`):
a client that goes away — a closed tab, a dropped connection — stops
receiving events, and the run goes on to its end, checkpointed as usual, so
the reply being written is not lost. The session is never left half-written.
Such a run stops when it is asked to (``POST …/runs/{id}/cancel/``, or a newer
run with ``on_busy`` ``interrupt`` / ``rollback``), like a background run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

from django.http import StreamingHttpResponse

from flows.checkpointer import run_in_orm_thread
from flows.engine import FlowError
from flows.events import dumps
from flows.runs.stopping import POLL_SECONDS, RunStopped, stop_request

logger = logging.getLogger("flows.api")

#: Seconds of silence after which an event stream sends a comment, so that
#: proxies and browsers keep a connection open while a node works.
HEARTBEAT_SECONDS = 15.0

#: Runs still going, kept referenced until they end.
_running: set[asyncio.Task[None]] = set()


def running_runs() -> set[asyncio.Task[None]]:
    """The request-started runs of this process that have not ended (for tests and shutdown)."""
    return set(_running)


@dataclass(frozen=True, slots=True)
class _End:
    error: Exception | None


@dataclass(frozen=True, slots=True)
class Stoppable:
    """How a run started by a request is stopped on request (:mod:`flows.runs.stopping`)."""

    run_id: str
    #: records the stop (and undoes the run's work after a rollback); returns the run's last event
    end: Callable[[str], Awaitable[dict[str, Any]]]


class RunEvents:
    """A run's events, read by a request, produced by a task that does not depend on it."""

    def __init__(self, events: AsyncIterator[dict[str, Any]], stoppable: Stoppable | None = None) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | _End] = asyncio.Queue()
        self._getter: asyncio.Future[dict[str, Any] | _End] | None = None
        self._reader_gone = False
        self._stoppable = stoppable
        self._stop_action = ""
        task = asyncio.ensure_future(self._drive(events))
        _running.add(task)
        task.add_done_callback(_running.discard)
        if stoppable is not None:
            watcher = asyncio.ensure_future(self._watch(stoppable.run_id, task))
            _running.add(watcher)
            watcher.add_done_callback(_running.discard)

    async def _watch(self, run_id: str, task: asyncio.Task[None]) -> None:
        while not task.done():
            action = await run_in_orm_thread(stop_request, run_id, False)
            if action:
                self._stop_action = action
                task.cancel()
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _drive(self, events: AsyncIterator[dict[str, Any]]) -> None:
        error: Exception | None = None
        try:
            async for event in events:
                self._queue.put_nowait(event)
        except asyncio.CancelledError:
            if self._stop_action and self._stoppable is not None:  # stopped on request: the run ends here
                self._queue.put_nowait(await self._stoppable.end(self._stop_action))
                error = RunStopped(self._stop_action)
                return
            # the worker is shutting down: the run stops at its last checkpoint
            error = RuntimeError("the run was cancelled (the server is shutting down)")
            raise
        except Exception as exc:  # the run's failure, handed to whoever reads (run_failed came first)
            error = exc
            if self._reader_gone and not isinstance(exc, FlowError):
                logger.error("a run nobody reads any more failed", exc_info=exc)
        finally:
            self._queue.put_nowait(_End(error))

    async def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, ``None`` once the run ended; raises the run's error.

        ``TimeoutError`` after ``timeout`` seconds without an event (nothing
        is lost: the same wait goes on at the next call).
        """
        if self._getter is None:
            self._getter = asyncio.ensure_future(self._queue.get())
        done, _ = await asyncio.wait({self._getter}, timeout=timeout)
        if not done:
            raise TimeoutError
        item, self._getter = self._getter.result(), None
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            return None
        return item

    def stop_reading(self) -> None:
        """The reader is gone: the run goes on, its events are dropped."""
        self._reader_gone = True
        if self._getter is not None:
            self._getter.cancel()
            self._getter = None


async def run_to_end(events: AsyncIterator[dict[str, Any]], stoppable: Stoppable | None = None) -> dict[str, Any]:
    """Reads a run's events into the invoke answer (``InvokeResult``)."""
    run = RunEvents(events, stoppable)
    result: dict[str, Any] = {"state": {}, "run_id": None, "checkpoint_id": None, "status": "idle",
                              "interrupts": []}
    try:
        while (event := await run.next()) is not None:
            kind = event["event"]
            if kind == "run_started":
                result["run_id"] = event["run_id"]
            elif kind == "node_finished" and event.get("checkpoint_id"):
                result["checkpoint_id"] = event["checkpoint_id"]
            elif kind == "interrupted":
                result.update(state=event["state"], checkpoint_id=event["checkpoint_id"],
                              status="interrupted", interrupts=event["interrupts"])
            elif kind == "run_finished":
                result["state"] = event["state"]
    finally:
        run.stop_reading()
    return result


def frame(event_id: int, event: dict[str, Any]) -> str:
    """One server-sent event: ``id``, ``event`` (the engine's name) and the JSON ``data``."""
    return stored_frame(event_id, event["event"], dumps(event))


def stored_frame(event_id: int, name: str, data: str) -> str:
    return f"id: {event_id}\nevent: {name}\ndata: {data}\n\n"


KEEP_ALIVE = ": still running\n\n"


async def _framed(first: dict[str, Any], run: RunEvents) -> AsyncIterator[str]:
    """The events as SSE frames, with a comment line while nothing happens."""
    event_id = 1
    try:
        yield frame(event_id, first)
        while True:
            try:
                event = await run.next(timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                yield KEEP_ALIVE
                continue
            except (FlowError, RunStopped):
                break  # the run failed or was stopped: its run_failed event was the last one sent
            except Exception:  # a bug (a hook, a store): the stream ends, the error is logged
                logger.exception("a streamed run failed")
                break
            if event is None:
                break
            event_id += 1
            yield frame(event_id, event)
    finally:
        run.stop_reading()


async def event_stream_response(
    events: AsyncIterator[dict[str, Any]], stoppable: Stoppable | None = None
) -> StreamingHttpResponse:
    """The run as ``text/event-stream``.

    The first event is awaited here, before the response starts: whatever
    fails before the run begins (bad input, a busy session, an unknown
    checkpoint) is raised to the view and answered as a JSON error.
    """
    run = RunEvents(events, stoppable)
    first = await run.next()
    if first is None:  # an engine stream always starts with run_started
        raise RuntimeError("the run ended before it started")
    return sse_response(_framed(first, run))


def sse_response(frames: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(frames, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response


async def stored_frames(events: AsyncIterator[Any]) -> AsyncIterator[str]:
    """Stored events (:mod:`flows.runs.follow`) as SSE frames; ``None`` is a keep-alive.

    A comment goes first, so a client knows the stream is open before any event.
    """
    yield ": connected\n\n"
    async for event in events:
        yield KEEP_ALIVE if event is None else stored_frame(event.id, event.event, event.data)
