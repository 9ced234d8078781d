"""The OpenAPI schema of the flows API, its Swagger UI page, and the JSON 404 for other paths.

The schema covers flows' own routes only (a site's other DRF views are its
business) and the docs page loads Swagger UI from drf-spectacular-sidecar's
static files, whatever ``SPECTACULAR_SETTINGS`` say: nothing comes from a CDN.
Both are public, as drf-spectacular's views are by default; they describe the
API and hold no data.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.templatetags.static import static
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .base import FlowsAPIView, JSONErrors

#: Names for the choice sets that share a field name (``status``, ``on_busy``): put them in
#: ``SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]`` too when you run drf-spectacular over your site.
ENUM_NAME_OVERRIDES = {
    "SessionStatusEnum": "flows.api.serializers.SESSION_STATUSES",
    "RunStatusEnum": "flows.api.serializers.RUN_STATUSES",
    "OnBusyEnum": "flows.api.serializers.STRATEGIES",
}

SCHEMA_SETTINGS = {
    "TITLE": "flows",
    "DESCRIPTION": "Persistent conversational workflows: flows, sessions, runs, state and history.",
    "VERSION": "1",
    "PREPROCESSING_HOOKS": ["flows.api.schema.flows_endpoints_only"],
    "ENUM_NAME_OVERRIDES": ENUM_NAME_OVERRIDES,
}


def flows_endpoints_only(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular hook: keeps the endpoints of flows' API views (path, regex, method, view)."""
    return [e for e in endpoints if issubclass(getattr(e[3], "cls", object), FlowsAPIView)]


class SchemaView(JSONErrors, SpectacularAPIView):
    custom_settings = SCHEMA_SETTINGS


class DocsView(JSONErrors, SpectacularSwaggerView):
    url_name = "flows-api:schema"
    title = "flows API"

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")


@csrf_exempt  # a POST to a wrong path is a 404, not a CSRF failure page
async def no_such_route(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under ``api/`` that is no route: a JSON 404, with a hint for a missing slash."""
    detail = f"no API route at {request.path}"
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not no_such_route:
            detail += f"; did you mean {request.path}/ ?"
    return JsonResponse({"code": "not_found", "detail": detail}, status=404)
