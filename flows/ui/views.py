"""Page shells: the home page (flows and sessions) and a conversation."""

from __future__ import annotations

import types
import typing
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from flows import registry
from flows.conf import flows_settings
from flows.engine import InvalidSessionId
from flows.engine.ids import validate_session_id
from flows.graph_svg import graph_svg

#: the state field a chat flow keeps its messages in
MESSAGES_FIELD = "messages"


def messages_as(engine: Any) -> str | None:
    """How the page sends a message, from the messages field's declared item type: ``"text"``
    (``list[str]``), ``"dict"`` (``{"role", "content"}``, for any other item type), or ``None``
    when the type does not say (``list``): the page then follows the messages already there."""
    field = next(spec for spec in engine.field_specs() if spec.name == MESSAGES_FIELD)
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # list[str] | None: the list
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        annotation = members[0] if len(members) == 1 else Any
    items = typing.get_args(annotation)
    if not items or items[0] is Any:
        return None
    return "text" if items[0] is str else "dict"


def _api_root() -> str:
    """Where the API answers, wherever the site mounted ``flows.urls``."""
    return reverse("flows-api:flow-list").removesuffix("flows/")


def _client(request: HttpRequest) -> dict[str, str]:
    """What the page's script needs to call the API: its root and the CSRF token with its header.

    The token comes from the page, not the cookie, so ``CSRF_USE_SESSIONS`` and
    ``CSRF_COOKIE_HTTPONLY`` work too.
    """
    header = settings.CSRF_HEADER_NAME.removeprefix("HTTP_").replace("_", "-")
    return {"api": _api_root(), "csrf_token": get_token(request), "csrf_header": header}


def _flow_or_404(name: str) -> Any:
    try:
        return registry.get_flow(name)
    except registry.FlowNotFound as error:
        raise Http404(str(error)) from error


@login_required
@ensure_csrf_cookie
def home(request: HttpRequest) -> HttpResponse:
    flows = [
        {"name": name, "description": registry.flow_description(name),
         "graph": graph_svg(engine := registry.get_flow(name), title=f"the graph of {name}"),
         "nodes": len(engine.nodes)}
        for name in registry.flow_names()
    ]
    return render(request, "flows/home.html", {
        "flows": flows,
        "ui_config": {**_client(request), "conversation": reverse("flows-ui:conversation", args=["FLOW", "SESSION"])},
    })


@login_required
@ensure_csrf_cookie
def conversation(request: HttpRequest, flow: str, session_id: str) -> HttpResponse:
    """The page of one session; who may see the session is the API's answer, read by the page."""
    engine = _flow_or_404(flow)
    try:
        validate_session_id(session_id)
    except InvalidSessionId as error:
        raise Http404(str(error)) from error
    chat = MESSAGES_FIELD in engine.state_fields
    return render(request, "flows/conversation.html", {
        "flow": flow,
        "session_id": session_id,
        "description": registry.flow_description(flow),
        "graph": graph_svg(engine, title=f"the graph of {flow}"),
        "ui_config": {
            **_client(request),
            # flows.routing's path, from the site's root (where ProtocolTypeRouter serves sockets)
            "socket": f"ws/flows/{quote(flow, safe='')}/sessions/{quote(session_id, safe='')}/",
            "flow": flow,
            "session_id": session_id,
            "chat": chat,
            "messages_field": MESSAGES_FIELD,
            "messages_as": messages_as(engine) if chat else None,
            "on_busy": flows_settings.ON_BUSY,
            "home": reverse("flows-ui:home"),
        },
    })
