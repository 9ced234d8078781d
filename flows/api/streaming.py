"""Running a flow for a request: to its end as one JSON answer, or live as server-sent events.

Both read the engine's ``stream()``, so the JSON answer knows the run's id and
its last checkpoint without another read, and the event stream is made of
exactly the events the engine yields (DESIGN.md: run_started, node_started,
chunk, node_finished, interrupted, run_finished, run_failed).

A client that leaves an event stream early cancels the run at its next await
point; what it checkpointed stays, and the next call on the session continues
from there (the session is never left half-written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator

from django.http import StreamingHttpResponse

from flows.engine import FlowError
from flows.events import dumps

logger = logging.getLogger("flows.api")

#: Seconds of silence after which an event stream sends a comment, so that
#: proxies and browsers keep a connection open while a node works.
HEARTBEAT_SECONDS = 15.0


async def run_to_end(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """Drains a run's events into the invoke answer (``InvokeResult``)."""
    result: dict[str, Any] = {"state": {}, "run_id": None, "checkpoint_id": None, "status": "idle",
                              "interrupts": []}
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
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
    return result


def frame(event_id: int, event: dict[str, Any]) -> str:
    """One server-sent event: ``id``, ``event`` (the engine's name) and the JSON ``data``."""
    return f"id: {event_id}\nevent: {event['event']}\ndata: {dumps(event)}\n\n"


async def _framed(first: dict[str, Any], events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """The events as SSE frames, with heartbeat comments while nothing happens.

    A task pumps the run's events into a queue, so waiting with a timeout
    never cancels the run itself; leaving (a client disconnect cancels this
    generator) cancels the pump, and with it the run.
    """
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in events:
                queue.put_nowait(event)
        except FlowError:
            pass  # the run failed: the engine yielded its run_failed event first
        except Exception:  # a bug (a hook, a store): the stream ends after run_failed, logged here
            logger.exception("a streamed run failed")
        finally:
            queue.put_nowait(None)

    pumping = asyncio.ensure_future(pump())
    try:
        yield frame(1, first)
        event_id = 1
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": still running\n\n"
                continue
            if event is None:
                break
            event_id += 1
            yield frame(event_id, event)
        await pumping
    finally:
        if not pumping.done():
            pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)
        await events.aclose()  # type: ignore[attr-defined]


async def event_stream_response(events: AsyncIterator[dict[str, Any]]) -> StreamingHttpResponse:
    """The run as ``text/event-stream``.

    The first event is awaited here, before the response starts: whatever
    fails before the run begins (bad input, a busy session, an unknown
    checkpoint) is raised to the view and answered as a JSON error.
    """
    try:
        first = await events.__anext__()
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    response = StreamingHttpResponse(_framed(first, events), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response
