"""Running a flow for a request: to its end as one JSON answer, or live as server-sent events.

Both read the engine's ``stream()``, so the JSON answer knows the run's id and
its last checkpoint without another read, and the event stream is made of
exactly the events the engine yields (DESIGN.md: run_started, node_started,
chunk, node_finished, interrupted, run_finished, run_failed).

The run is driven by a task of its own (:class:`flows.runs.detached.RunEvents`):
a client that goes away stops receiving events and the run goes on to its end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from django.http import StreamingHttpResponse

from flows.engine import FlowError
from flows.events import dumps
from flows.runs.detached import RunEvents
from flows.runs.stopping import RunStopped

logger = logging.getLogger("flows.api")

#: Seconds of silence after which an event stream sends a comment, so that
#: proxies and browsers keep a connection open while a node works.
HEARTBEAT_SECONDS = 15.0

async def run_to_end(run: RunEvents) -> dict[str, Any]:
    """Reads a run's events into the invoke answer (``InvokeResult``)."""
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


async def event_stream_response(run: RunEvents) -> StreamingHttpResponse:
    """The run as ``text/event-stream``.

    The first event is awaited here, before the response starts: whatever
    fails before the run begins (bad input, a busy session, an unknown
    checkpoint) is raised to the view and answered as a JSON error.
    """
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
