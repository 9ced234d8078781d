"""Django's error views, answering JSON for the API's paths: set them in the site's root URLconf.

Errors inside the API's views are JSON already (:mod:`.errors`). What happens
before a view runs — a bad ``Host`` header, an exception in a middleware —
goes to the root URLconf's ``handler400`` / ``handler403`` / ``handler404`` /
``handler500``. With these, a path of the flows API gets ``{"code", "detail"}``
and every other path Django's own page::

    handler400 = "flows.api.handlers.bad_request"
    handler403 = "flows.api.handlers.permission_denied"
    handler404 = "flows.api.handlers.page_not_found"
    handler500 = "flows.api.handlers.server_error"

(``DEBUG = True`` shows Django's technical pages instead, as always.)
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults


def is_api_path(request: HttpRequest) -> bool:
    try:
        return resolve(request.path_info).namespace == "flows-api"
    except Resolver404:
        return False


def _json(code: str, detail: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


def bad_request(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    if is_api_path(request):
        return _json("bad_request", "the request was refused before it reached the API", 400)
    return defaults.bad_request(request, exception, **kwargs)


def permission_denied(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    if is_api_path(request):
        return _json("permission_denied", str(exception) or "permission denied", 403)
    return defaults.permission_denied(request, exception, **kwargs)


def page_not_found(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    if is_api_path(request):
        return _json("not_found", f"no API route at {request.path}", 404)
    return defaults.page_not_found(request, exception, **kwargs)


def server_error(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    if is_api_path(request):
        return _json("server_error", "internal server error", 500)
    return defaults.server_error(request, **kwargs)
