"""The API's routes: flows, sessions, invoke, state, checkpoints, reset (docs/api.md).

Each view finds the flow (404 ``flow_not_found``), checks the session id (400
``invalid_session_id``) and the caller's access to the session (404
``session_not_found`` for a session that does not exist *or* is someone
else's), then makes one or two engine calls. Errors become JSON in
:mod:`.errors`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.handlers.asgi import ASGIRequest
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import NotAcceptable, NotFound, PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from flows import registry, sessions
from flows.checkpointer import run_in_orm_thread
from flows.conf import flows_settings
from flows.engine import CheckpointNotFound, FlowEngine, InvalidInput
from flows.engine.checkpointers import CheckpointMetadata
from flows.engine.ids import validate_session_id
from flows.runs import starting

if TYPE_CHECKING:
    from flows.base_models import AbstractFlowSession

from . import serializers as s
from . import shapes
from .base import FlowsAPIView, documented
from .errors import ApiError, from_invalid_input, invalid, not_found
from .permissions import may_access, owner_id_for
from .renderers import EventStreamRenderer, StateJSONRenderer
from .streaming import event_stream_response, run_to_end

MAX_PAGE_SIZE = 100

FLOW = OpenApiParameter("flow", str, OpenApiParameter.PATH, description="a registered flow's name")
SESSION = OpenApiParameter("session_id", str, OpenApiParameter.PATH, description=s.SESSION_ID_HELP)
LIMIT = OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                         description=f"page size, 1-{MAX_PAGE_SIZE} (default FLOWS['PAGE_SIZE'])")


def errors(*codes: int, run: bool = False) -> dict[int, OpenApiResponse]:
    """The error responses a route documents (each an ``Error`` body)."""
    described = {code: OpenApiResponse(s.Error) for code in (400, 401, 403, 404, *codes)}
    if run:
        described[500] = OpenApiResponse(s.RunError, description="a node failed: the session is failed, resumable")
    return described


# -- lookups --------------------------------------------------------------------------------


def flow_named(name: str) -> FlowEngine:
    return registry.get_flow(name)  # FlowNotFound -> 404


def session_id_checked(session_id: str) -> str:
    return validate_session_id(session_id)  # InvalidSessionId -> 400


def session_gone(session_id: str) -> Exception:
    return sessions.SessionNotFound(session_id)


async def accessible_row(
    request: Request, flow: str, engine: FlowEngine, session_id: str
) -> AbstractFlowSession | None:
    """The session's row if the caller may reach the session; 404 otherwise.

    ``None`` for a session whose store has checkpoints but the site never
    recorded (made outside the API with a Redis or SQL store): it has no
    owner, so it is staff's (everyone's when anonymous access is on).
    """
    session_id_checked(session_id)
    row = await sessions.aget(flow, session_id)
    if row is not None:
        if may_access(request.user, row.owner_id):
            return row
    elif may_access(request.user, None) and await engine.get_metadata(session_id) is not None:
        return None
    raise session_gone(session_id)


#: Checkpoint ids as stores make them; anything else cannot name a checkpoint (nor reach a database).
CHECKPOINT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def checkpoint_id_checked(checkpoint_id: str) -> str:
    if not CHECKPOINT_ID.fullmatch(checkpoint_id):
        raise CheckpointNotFound(f"no checkpoint {checkpoint_id!r}: checkpoint ids are 1-64 of A-Z a-z 0-9 _ . : -")
    return checkpoint_id


def page_size(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return min(int(flows_settings.PAGE_SIZE), MAX_PAGE_SIZE)
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise invalid(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}", fields={"limit": [f"got {raw!r}"]})
    return int(raw)


def body(request: Request, serializer_class: type[s.serializers.Serializer]) -> dict[str, Any]:
    """The validated body (:func:`flows.api.serializers.validated`)."""
    return s.validated(serializer_class, request.data)


def json_input(engine: FlowEngine, data: dict[str, Any] | None, prefix: str) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        return engine.input_from_json(data, origin=f"the {prefix}")
    except InvalidInput as error:
        raise from_invalid_input(error, prefix) from error


async def claim_session(
    request: Request, flow: str, engine: FlowEngine, session_id: str, options: dict[str, Any],
    refuse: Callable[[], None] = lambda: None,
) -> AbstractFlowSession:
    """The session's row for the caller's call (:func:`flows.runs.starting.claim_session`)."""
    return await starting.claim_session(flow, engine, session_id, request.user, options, refuse)


def refuse_streaming_without_asgi(request: Request, streamed: bool) -> None:
    # Under WSGI each call runs on an event loop of its own, gone when the view returns: a stream
    # would end with it.
    if streamed and not isinstance(request._request, ASGIRequest):
        raise NotAcceptable("text/event-stream needs the site served by an ASGI server (uvicorn, daphne); "
                            "ask for application/json")


# -- flows ----------------------------------------------------------------------------------


class FlowListView(FlowsAPIView):
    @documented(operation_id="flows_list", responses={200: s.Flow(many=True), **errors()},
                summary="The registered flows")
    async def get(self, request: Request) -> Response:
        return Response([shapes.flow_data(name, flow_named(name)) for name in registry.flow_names()])


class FlowDetailView(FlowsAPIView):
    @documented(operation_id="flows_retrieve", parameters=[FLOW], responses={200: s.Flow, **errors()},
                summary="One flow: its graph and state fields")
    async def get(self, request: Request, flow: str) -> Response:
        return Response(shapes.flow_data(flow, flow_named(flow)))


# -- sessions -------------------------------------------------------------------------------


class SessionCursor(CursorPagination):
    """Newest activity first; the cursor is DRF's (opaque, stable under inserts)."""

    ordering = ("-updated_at", "-pk")
    page_size_query_param = "limit"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        return page_size(request)

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF's answer to a bad cursor; it is a bad query field
            raise invalid("the cursor is not one this API gave", fields={"cursor": ["invalid cursor"]}) from None


class SessionListView(FlowsAPIView):
    @documented(
        operation_id="sessions_list", summary="The caller's sessions of a flow, newest activity first",
        parameters=[FLOW, LIMIT, OpenApiParameter("cursor", str, description="from next / previous"),
                    OpenApiParameter("status", str, enum=s.SESSION_STATUSES)],
        responses={200: s.SessionPage, **errors()},
    )
    async def get(self, request: Request, flow: str) -> Response:
        flow_named(flow)
        user = request.user
        if not user.is_authenticated:
            raise PermissionDenied("sign in to list sessions: anonymous sessions are reached by their id only")
        rows, using = sessions.rows(flow)
        if not user.is_staff:
            rows = rows.filter(owner_id=user.pk)
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in s.SESSION_STATUSES:
                raise invalid(f"status must be one of {', '.join(s.SESSION_STATUSES)}", fields={"status": [wanted]})
            rows = rows.filter(status=wanted)
        rows = rows.only("flow_name", "session_id", "status", "created_at", "updated_at")
        paginator = SessionCursor()
        page = await run_in_orm_thread(lambda: paginator.paginate_queryset(rows, request, self), using=using)
        return paginator.get_paginated_response([shapes.session_summary(row) for row in page or ()])

    @documented(
        operation_id="sessions_create", summary="Start a session (no run yet)", parameters=[FLOW],
        request=s.SessionCreateRequest,
        responses={201: s.Session, **errors(409, 413, 415)},
    )
    async def post(self, request: Request, flow: str) -> Response:
        engine = flow_named(flow)
        session_id = body(request, s.SessionCreateRequest).get("session_id") or uuid.uuid4().hex
        taken = ApiError(f"session {session_id!r} already exists; omit session_id for a new random one",
                         code="session_exists", status_code=status.HTTP_409_CONFLICT)
        if await engine.get_metadata(session_id) is not None:
            raise taken
        row, created = await sessions.acreate(flow, session_id, owner_id_for(request.user))
        if not created:
            raise taken
        url = reverse("flows-api:session-detail", kwargs={"flow": flow, "session_id": session_id})
        return Response(shapes.session_data(flow, session_id, row, None), status=status.HTTP_201_CREATED,
                        headers={"Location": request.build_absolute_uri(url)})


class SessionDetailView(FlowsAPIView):
    @documented(operation_id="sessions_retrieve", parameters=[FLOW, SESSION], summary="One session",
                responses={200: s.Session, **errors()})
    async def get(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        row = await accessible_row(request, flow, engine, session_id)
        return Response(shapes.session_data(flow, session_id, row, await engine.get_metadata(session_id)))

    @documented(operation_id="sessions_destroy", parameters=[FLOW, SESSION], request=None,
                summary="Delete the session and all its checkpoints", responses={204: None, **errors(409)})
    async def delete(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        await engine.reset_session(session_id)
        await sessions.adelete(flow, session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- running --------------------------------------------------------------------------------


class InvokeView(FlowsAPIView):
    renderer_classes = (StateJSONRenderer, EventStreamRenderer)
    throttle_scope = "invoke"

    @documented(
        operation_id="sessions_invoke", parameters=[FLOW, SESSION], request=s.InvokeRequest,
        summary="Run the flow on the session (created on first use); JSON, or events with Accept: text/event-stream",
        responses={
            (200, "application/json"): s.InvokeResult,
            (200, "text/event-stream"): OpenApiResponse(s.ServerSentEvent, description="the run's events"),
            **errors(406, 409, 413, 415, 429, 503, run=True),
        },
    )
    async def post(self, request: Request, flow: str, session_id: str) -> Any:
        engine = flow_named(flow)
        session_id_checked(session_id)
        data = body(request, s.InvokeRequest)
        apply_state = json_input(engine, data.get("input"), "input")
        if data.get("checkpoint_id"):
            checkpoint_id_checked(data["checkpoint_id"])
        streamed = isinstance(request.accepted_renderer, EventStreamRenderer)
        await claim_session(request, flow, engine, session_id, starting.call_options(data),
                            refuse=lambda: refuse_streaming_without_asgi(request, streamed))
        run = await starting.start_here(engine, flow, session_id, request.user, data, apply_state, origin="api")
        if streamed:
            return await event_stream_response(run)
        return Response(await run_to_end(run))


class StateView(FlowsAPIView):
    @documented(
        operation_id="sessions_state", parameters=[
            FLOW, SESSION, OpenApiParameter("checkpoint_id", str, description="the state at this checkpoint")],
        summary="The session's state (at the head, or at a checkpoint)", responses={200: s.State, **errors()},
    )
    async def get(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        checkpoint_id = request.query_params.get("checkpoint_id") or None
        if checkpoint_id is not None:
            checkpoint_id_checked(checkpoint_id)
        return Response(shapes.state_data(await engine.get_checkpoint(session_id, checkpoint_id)))

    @documented(
        operation_id="sessions_update_state", parameters=[FLOW, SESSION], request=s.StateUpdateRequest,
        summary="Write a checkpoint applying values through the reducers, running no node",
        responses={200: s.State, **errors(409, 413, 415)},
    )
    async def post(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        data = body(request, s.StateUpdateRequest)
        as_node = data.get("as_node")
        if as_node is not None and as_node not in engine.nodes:
            raise invalid(f"as_node {as_node!r} is not a node of this flow",
                          fields={"as_node": [f"one of {', '.join(engine.nodes)}"]})
        values = json_input(engine, data["values"], "values") or {}
        try:
            meta = await engine.update_state(session_id, values, as_node=as_node)
        except InvalidInput as error:
            raise from_invalid_input(error, "values") from error
        return Response(shapes.state_data(await engine.get_checkpoint(session_id, meta.checkpoint_id)))


class ResetView(FlowsAPIView):
    @documented(operation_id="sessions_reset", parameters=[FLOW, SESSION], request=None,
                summary="Delete every checkpoint: the next invoke starts fresh", responses={204: None, **errors(409)})
    async def post(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        await engine.reset_session(session_id)
        await sessions.amark(flow, session_id, "idle", error="")
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- history --------------------------------------------------------------------------------


class CheckpointListView(FlowsAPIView):
    @documented(
        operation_id="checkpoints_list", summary="The head's history, newest first",
        parameters=[FLOW, SESSION, LIMIT,
                    OpenApiParameter("before", str, description="the page of checkpoints older than this one"),
                    OpenApiParameter("after", str, description="the page of checkpoints newer than this one")],
        responses={200: s.CheckpointPage, **errors()},
    )
    async def get(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        limit = page_size(request)
        before, after = request.query_params.get("before"), request.query_params.get("after")
        if before and after:
            raise invalid("give before or after, not both", fields={"before": ["with after"], "after": ["with before"]})
        try:
            for cursor in (before, after):
                if cursor:
                    checkpoint_id_checked(cursor)
            if after:
                page, newer, older = await self.newer_than(engine, session_id, after, limit)
            else:
                found = await engine.list_checkpoints(session_id, limit=limit + 1, before=before or None)
                page, newer, older = found[:limit], bool(before), len(found) > limit
        except CheckpointNotFound as error:
            cursor = "after" if after else "before"
            raise invalid(str(error), code=error.code, fields={cursor: [str(error)]}) from error
        url = remove_query_param(remove_query_param(request.build_absolute_uri(), "before"), "after")
        return Response({
            "next": replace_query_param(url, "before", page[-1].checkpoint_id) if page and older else None,
            "previous": replace_query_param(url, "after", page[0].checkpoint_id) if page and newer else None,
            "results": [shapes.checkpoint_summary(meta) for meta in page],
        })

    @staticmethod
    async def newer_than(
        engine: FlowEngine, session_id: str, checkpoint_id: str, limit: int
    ) -> tuple[list[CheckpointMetadata], bool, bool]:
        """The ``limit`` checkpoints just newer than ``checkpoint_id`` on the head's branch.

        Reads the chain from the head down to the cursor: what following
        ``previous`` costs grows with the distance from the head (``next`` is
        always one page).
        """
        cursor = await engine.get_metadata(session_id, checkpoint_id)
        head = await engine.get_metadata(session_id)
        assert cursor is not None
        distance = head.depth - cursor.depth if head is not None else 0
        chain = await engine.list_checkpoints(session_id, limit=distance + 1) if distance > 0 else []
        ids = [meta.checkpoint_id for meta in chain]
        if checkpoint_id not in ids:
            if head is not None and head.checkpoint_id == checkpoint_id:
                return [], False, True
            raise CheckpointNotFound(f"checkpoint {checkpoint_id!r} is not on the head's branch")
        at = ids.index(checkpoint_id)
        return chain[max(0, at - limit):at], at > limit, True


class BranchListView(FlowsAPIView):
    @documented(
        operation_id="branches_list", summary="Where the session forked, with each branch's newest checkpoint",
        description="Every checkpoint with two or more children (forks made with `checkpoint_id`), oldest "
                    "first. Reads the whole session's history: for a client that shows branches, not per turn.",
        parameters=[FLOW, SESSION],
        responses={200: s.ForkList, **errors()},
    )
    async def get(self, request: Request, flow: str, session_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        return Response({"results": shapes.forks(await engine.list_all_checkpoints(session_id))})


class CheckpointDetailView(FlowsAPIView):
    @documented(
        operation_id="checkpoints_retrieve",
        parameters=[FLOW, SESSION, OpenApiParameter("checkpoint_id", str, OpenApiParameter.PATH)],
        summary="One checkpoint: its metadata, the state at it and what it changed",
        responses={200: s.Checkpoint, **errors()},
    )
    async def get(self, request: Request, flow: str, session_id: str, checkpoint_id: str) -> Response:
        engine = flow_named(flow)
        await accessible_row(request, flow, engine, session_id)
        try:
            checkpoint = await engine.get_checkpoint(session_id, checkpoint_id_checked(checkpoint_id))
        except CheckpointNotFound as error:
            raise not_found("checkpoint", str(error)) from error
        assert checkpoint is not None
        return Response(shapes.checkpoint_data(checkpoint))
