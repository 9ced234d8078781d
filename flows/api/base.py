"""The base of the API's views: async end to end, configured by ``FLOWS``, errors as JSON.

Why not a sync DRF view around ``flow.sync.invoke``: under ASGI a sync view
blocks a thread for the whole run, and a run mostly waits (on a model, a
tool, a human). These views are ``async def``, so one worker process runs
many sessions at once. DRF itself stays sync where it is sync: authentication,
permissions, throttles and content negotiation (``initial()``) run in one call
on flows' ORM thread pool, whose database connections persist between calls
(``CONN_MAX_AGE``); ``sync_to_async``'s per-request thread would open a new
connection for every request. That is the whole difference from DRF's own
``APIView.dispatch``; parsers, serializers, renderers and exceptions are DRF's.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from flows.checkpointer import run_in_orm_thread
from flows.conf import flows_settings

from .errors import exception_handler
from .parsers import JSONBodyParser
from .renderers import Negotiation, StateJSONRenderer


def documented(**kwargs: Any) -> Any:
    """drf-spectacular's ``extend_schema``, on its own ``AutoSchema``.

    ``extend_schema`` on a method builds on ``DEFAULT_SCHEMA_CLASS`` unless the
    method names a schema: naming it keeps the API's schema right whatever a
    site's ``REST_FRAMEWORK`` says.
    """

    def decorate(handler: Any) -> Any:
        handler.schema = AutoSchema
        return extend_schema(**kwargs)(handler)

    return decorate


def _classes(paths: Any) -> list[type]:
    return [import_string(path) if isinstance(path, str) else path for path in paths]


class JSONErrors:
    """Errors answered by :mod:`.errors`, always as JSON, whatever the view renders otherwise."""

    content_negotiation_class: type[BaseContentNegotiation] = Negotiation

    def get_exception_handler(self) -> Any:
        return exception_handler

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = StateJSONRenderer()
            request.accepted_media_type = StateJSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class FlowsAPIView(JSONErrors, APIView):
    parser_classes: Sequence[type[BaseParser]] = (JSONBodyParser,)
    renderer_classes: Sequence[type[BaseRenderer]] = (StateJSONRenderer,)
    schema = AutoSchema()

    # -- FLOWS settings, read per request ---------------------------------------------

    def get_authenticators(self) -> list[Any]:
        chosen = flows_settings.AUTHENTICATION_CLASSES
        # api_settings holds the classes already (imported from REST_FRAMEWORK's strings)
        return [cls() for cls in _classes(api_settings.DEFAULT_AUTHENTICATION_CLASSES if chosen is None else chosen)]

    def get_permissions(self) -> list[Any]:
        return [cls() for cls in _classes(flows_settings.PERMISSION_CLASSES)]

    def get_throttles(self) -> list[Any]:
        return [cls() for cls in _classes(flows_settings.THROTTLE_CLASSES)]

    # -- async dispatch -----------------------------------------------------------------

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        """The view, outside ``ATOMIC_REQUESTS`` (Django refuses it for async views, and no
        transaction may stay open while nodes run: checkpoints commit as they are saved)."""
        view = super().as_view(**initkwargs)
        for alias in settings.DATABASES:
            view = transaction.non_atomic_requests(alias)(view)
        return view

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            await run_in_orm_thread(lambda: self.initial(drf_request, *args, **kwargs))
            method = (drf_request.method or "").lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                handler = self.http_method_not_allowed
            response = handler(drf_request, *args, **kwargs)
            if inspect.isawaitable(response):
                response = await response
        except Exception as exc:  # noqa: BLE001 - as APIView.dispatch: handle_exception answers API errors, re-raises others
            response = self.handle_exception(exc)
        self.response = self.finalize_response(drf_request, response, *args, **kwargs)
        return self.response
