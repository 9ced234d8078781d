"""Runs as a resource: background runs, their state, waiting, stopping, and their event streams.

``POST …/runs/`` answers 202 at once: the run executes on a task worker
(:mod:`flows.runs`). Every run of a session is listed here, however it was
started (invoke, the admin, a command, a background worker). Streams replay a
run's stored events and then follow it live, from any process, resuming after
``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import NotAcceptable
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from flows.checkpointer import run_in_orm_thread
from flows.engine import CheckpointNotFound, FlowEngine
from flows.events import dumps
from flows.runs import follow, starting
from flows.runs.stopping import mark_stop
from flows.runs.tasks import recover_stale_runs

from . import serializers as s
from .base import FlowsAPIView, documented
from .errors import ApiError, invalid, not_found
from .renderers import EventStreamRenderer, StateJSONRenderer
from .streaming import sse_response, stored_frames
from .views import (
    FLOW,
    LIMIT,
    MAX_PAGE_SIZE,
    SESSION,
    accessible_row,
    body,
    checkpoint_id_checked,
    claim_session,
    errors,
    flow_named,
    json_input,
    page_size,
    refuse_streaming_without_asgi,
    session_id_checked,
)

RUN = OpenApiParameter("run_id", str, OpenApiParameter.PATH)
#: The longest a client may ask ``wait`` to wait.
MAX_WAIT_SECONDS = 300
WAIT_HEARTBEAT_SECONDS = 10.0
#: How long ``cancel`` waits to answer with the stopped run.
CANCEL_SETTLE_SECONDS = 2.0
RUN_FIELDS = ("pk", "run_id", "flow_name", "session_id", "status", "origin", "on_busy", "error", "created_at",
              "started_at", "finished_at", "engine_run_id", "head_checkpoint_id", "interrupts", "last_event", "worker")


def run_data(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run["run_id"],
        "flow": run["flow_name"],
        "session_id": run["session_id"],
        "status": run["status"],
        "origin": run["origin"],
        "on_busy": run["on_busy"],
        "created_at": run["created_at"],
        "started_at": run["started_at"],
        "finished_at": run["finished_at"],
        "error": run["error"],
        "engine_run_id": run["engine_run_id"] or None,
        "checkpoint_id": run["head_checkpoint_id"] or None,
        "interrupts": run["interrupts"] or [],
        "last_event_id": run["last_event"],
        "worker": run["worker"] or None,
    }


def _runs(flow: str, session_id: str) -> Any:
    from flows.models import Run

    return Run.objects.filter(flow_name=flow, session_id=session_id)


async def run_or_404(flow: str, session_id: str, run_id: str) -> dict[str, Any]:
    found = await run_in_orm_thread(lambda: _runs(flow, session_id).filter(run_id=run_id).values(*RUN_FIELDS).first())
    if found is None:
        raise not_found("run", f"no run {run_id!r} on session {session_id!r}")
    # a client looks at a running one: is its worker still alive?
    if found["status"] == "running" and await recover_stale_runs([run_id]):
        found = await run_in_orm_thread(lambda: _runs(flow, session_id).filter(run_id=run_id).values(*RUN_FIELDS).get())
    return found


async def state_left_by(engine: FlowEngine, run: dict[str, Any]) -> dict[str, Any]:
    """The state at the checkpoint the run left (the head when it left none, or it is gone)."""
    try:
        checkpoint = await engine.get_checkpoint(run["session_id"], run["head_checkpoint_id"] or None)
    except CheckpointNotFound:  # removed since (a later rollback, retention)
        checkpoint = await engine.get_checkpoint(run["session_id"])
    return checkpoint.state if checkpoint is not None else {}


class RunCursor(CursorPagination):
    ordering = ("-pk",)
    page_size_query_param = "limit"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        return page_size(request)


def location(request: Request, flow: str, session_id: str, run_id: str) -> str:
    return request.build_absolute_uri(
        reverse("flows-api:run-detail", kwargs={"flow": flow, "session_id": session_id, "run_id": run_id})
    )


class RunListView(FlowsAPIView):
    throttle_scope = "invoke"

    @documented(
        operation_id="runs_list", parameters=[FLOW, SESSION, LIMIT, OpenApiParameter("cursor", str)],
        summary="The session's runs, newest first, however they were started",
        responses={200: s.RunPage, **errors()},
    )
    async def get(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        paginator = RunCursor()
        rows = _runs(flow, session_id).values(*RUN_FIELDS)
        page: list[dict[str, Any]] | None = await run_in_orm_thread(
            lambda: paginator.paginate_queryset(rows, request, self)
        )
        return paginator.get_paginated_response([run_data(run) for run in page or ()])

    @documented(
        operation_id="runs_create", parameters=[FLOW, SESSION], request=s.RunRequest,
        summary="Start a background run: 202 at once, executed by a task worker",
        responses={202: s.Run, **errors(409, 413, 415, 429)},
    )
    async def post(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        session_id_checked(session_id)
        data = body(request, s.RunRequest)
        apply_state = json_input(engine, data.get("input"), "input")
        if data.get("checkpoint_id"):
            checkpoint_id_checked(data["checkpoint_id"])
        await claim_session(request, flow, engine, session_id, starting.call_options(data))
        run_id = await run_in_orm_thread(starting.start_in_background, flow, session_id, request.user, data,
                                         apply_state)
        run = await run_or_404(flow, session_id, run_id)
        return Response(run_data(run), status=status.HTTP_202_ACCEPTED,
                        headers={"Location": location(request, flow, session_id, run_id)})


class RunDetailView(FlowsAPIView):
    @documented(operation_id="runs_retrieve", parameters=[FLOW, SESSION, RUN], summary="One run",
                responses={200: s.Run, **errors()})
    async def get(self, request: Request, flow: str, session_id: str, run_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        return Response(run_data(await run_or_404(flow, session_id, run_id)))


class RunWaitView(FlowsAPIView):
    @documented(
        operation_id="runs_wait", summary="Wait until the run ends (at most ?timeout= seconds), with the state",
        parameters=[FLOW, SESSION, RUN, OpenApiParameter(
            "timeout", {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_SECONDS},
            description=f"seconds to wait at most (default 60, at most {MAX_WAIT_SECONDS})")],
        responses={200: s.RunWithState, **errors()},
    )
    async def get(self, request: Request, flow: str, session_id: str, run_id: str) -> StreamingHttpResponse:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        raw = request.query_params.get("timeout", "60")
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_WAIT_SECONDS:
            raise invalid(f"timeout must be a whole number of seconds from 1 to {MAX_WAIT_SECONDS}",
                          fields={"timeout": [f"got {raw!r}"]})
        run = await run_or_404(flow, session_id, run_id)
        deadline = time.monotonic() + int(raw)

        async def answer() -> AsyncIterator[str]:
            # Spaces before a JSON document are still that JSON: they keep proxies from closing an idle wait.
            current, last_sent = run, time.monotonic()
            while current["status"] not in follow.ENDED and time.monotonic() < deadline:
                await asyncio.sleep(follow.POLL_SECONDS * 2)
                current = await run_or_404(flow, session_id, run_id)
                if time.monotonic() - last_sent >= WAIT_HEARTBEAT_SECONDS:
                    last_sent = time.monotonic()
                    yield " "
            yield dumps({**run_data(current), "state": await state_left_by(engine, current)})

        response = StreamingHttpResponse(answer(), content_type="application/json")
        response["Cache-Control"] = "no-cache"
        return response


class RunCancelView(FlowsAPIView):
    @documented(
        operation_id="runs_cancel", parameters=[FLOW, SESSION, RUN], request=s.RunCancelRequest,
        summary="Stop the run at its next await point (rollback: and discard its checkpoints)",
        responses={200: s.Run, 202: s.Run, **errors(409)},
    )
    async def post(self, request: Request, flow: str, session_id: str, run_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        action = body(request, s.RunCancelRequest).get("action") or "cancel"
        run = await run_or_404(flow, session_id, run_id)
        if run["status"] in follow.ENDED:
            raise ApiError(f"run {run_id!r} has ended ({run['status']}): there is nothing to stop",
                           code="run_ended", status_code=status.HTTP_409_CONFLICT)
        await run_in_orm_thread(mark_stop, run_id, action)
        deadline = time.monotonic() + CANCEL_SETTLE_SECONDS
        while run["status"] not in follow.ENDED and time.monotonic() < deadline:
            await asyncio.sleep(follow.POLL_SECONDS)
            run = await run_or_404(flow, session_id, run_id)
        ended = run["status"] in follow.ENDED
        return Response(run_data(run), status=status.HTTP_200_OK if ended else status.HTTP_202_ACCEPTED)


def last_event_id(request: Request) -> int | None:
    """``Last-Event-ID`` (what browsers send when they reconnect), or ``?last_event_id=``."""
    raw = request.headers.get("Last-Event-ID") or request.query_params.get("last_event_id")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise invalid("Last-Event-ID must be an event id this stream sent", fields={"Last-Event-ID": [raw[:40]]})
    return int(raw)


def require_event_stream(request: Request) -> None:
    """The stream routes answer only ``text/event-stream`` (``*/*`` is fine): 406 to a client that wants JSON."""
    if not isinstance(request.accepted_renderer, EventStreamRenderer):
        raise NotAcceptable("this route answers with server-sent events only: send Accept: text/event-stream")


class RunStreamView(FlowsAPIView):
    renderer_classes = (EventStreamRenderer, StateJSONRenderer)

    @documented(
        operation_id="runs_stream", summary="The run's events: replayed from the start (or after Last-Event-ID), "
        "then live until it ends", parameters=[FLOW, SESSION, RUN, OpenApiParameter("last_event_id", int)],
        responses={(200, "text/event-stream"): OpenApiResponse(s.ServerSentEvent), **errors(406)},
    )
    async def get(self, request: Request, flow: str, session_id: str, run_id: str) -> StreamingHttpResponse:
        engine = flow_named(flow)
        require_event_stream(request)
        await accessible_row(request, flow, engine, session_id)
        refuse_streaming_without_asgi(request, True)
        after = last_event_id(request) or 0
        run = await run_or_404(flow, session_id, run_id)
        key = follow.RunKey(flow, session_id, run_id)
        return sse_response(stored_frames(follow.follow_run(run["pk"], key, after, idle=15.0)))


class SessionStreamView(FlowsAPIView):
    renderer_classes = (EventStreamRenderer, StateJSONRenderer)

    @documented(
        operation_id="sessions_stream", summary="Every run's events on the session, live (a watcher)",
        parameters=[FLOW, SESSION, OpenApiParameter("last_event_id", int)],
        responses={(200, "text/event-stream"): OpenApiResponse(s.ServerSentEvent), **errors(406)},
    )
    async def get(self, request: Request, flow: str, session_id: str) -> StreamingHttpResponse:
        engine = flow_named(flow)
        require_event_stream(request)
        await accessible_row(request, flow, engine, session_id)
        refuse_streaming_without_asgi(request, True)
        after = last_event_id(request)
        return sse_response(stored_frames(follow.follow_session(flow, session_id, after, idle=15.0)))

