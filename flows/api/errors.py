"""Every error under ``/api/`` as JSON: ``{"code", "detail", "fields"?}``, with the right status.

``code`` is stable and machine-readable, ``detail`` says what is wrong in
words, ``fields`` (validation errors only) maps each offending field — a body
field such as ``on_busy``, or a state field as ``input.turns`` — to its
messages. The handler is the API views' own (``get_exception_handler``), so a
site's ``REST_FRAMEWORK["EXCEPTION_HANDLER"]`` is left alone.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from flows import registry, sessions
from flows.engine import errors as engine
from flows.runs.stopping import RunStopped

logger = logging.getLogger("flows.api")

#: Seconds a client is told to wait before retrying a busy session.
BUSY_RETRY_AFTER = 1


class ApiError(exceptions.APIException):
    """An API failure with a status, a stable code, and optionally per-field messages."""

    def __init__(
        self,
        detail: str,
        *,
        code: str,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        fields: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, code)
        self.status_code = status_code
        self.error_code = code
        self.fields = dict(fields) if fields else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def not_found(what: str, detail: str) -> ApiError:
    return ApiError(detail, code=f"{what}_not_found", status_code=status.HTTP_404_NOT_FOUND)


def invalid(detail: str, *, code: str = "invalid", fields: Mapping[str, list[str]] | None = None) -> ApiError:
    return ApiError(detail, code=code, fields=fields)


def from_invalid_input(error: engine.InvalidInput, prefix: str) -> ApiError:
    """The engine's invalid-input error, its state fields named ``<prefix>.<field>``."""
    fields = {f"{prefix}.{name}": [problem] for name, problem in error.fields.items()}
    return invalid(str(error), code=error.code, fields=fields or None)


#: Failures of the run itself: the session is marked failed and stays resumable.
RUN_FAILURES = (engine.NodeError, engine.NodeTimeout, engine.RouteError, engine.MaxStepsExceeded)


def from_engine(error: engine.FlowError) -> ApiError:
    """The status and code of an error the engine or a checkpointer raised."""
    if isinstance(error, engine.InvalidInput):
        return from_invalid_input(error, "input")
    if isinstance(error, (engine.InvalidSessionId, engine.SerializationError)):
        return invalid(str(error), code=error.code)
    if isinstance(error, engine.CheckpointNotFound):
        return invalid(str(error), code=error.code, fields={"checkpoint_id": [str(error)]})
    if isinstance(error, (engine.SessionBusy, engine.LeaseLost)):
        return ApiError(str(error), code="session_busy", status_code=status.HTTP_409_CONFLICT,
                        headers={"Retry-After": str(BUSY_RETRY_AFTER)})
    if isinstance(error, engine.StateTooLarge):
        return ApiError(str(error), code=error.code, status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(error, engine.CheckpointerUnavailable):
        return ApiError(str(error), code=error.code, status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "5"})
    if isinstance(error, RUN_FAILURES):
        cause = getattr(error, "error", None) or error.__cause__ or error
        return ApiError(
            str(error), code=error.code, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            extra={"node": getattr(error, "node", None), "error_type": type(cause).__name__,
                   "session_status": "failed"},
        )
    return ApiError(str(error), code=error.code, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _from_drf(exc: exceptions.APIException) -> ApiError:
    headers = {}
    # Throttled sets wait in __init__; djangorestframework-stubs do not declare it
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:  # type: ignore[attr-defined]
        headers["Retry-After"] = str(math.ceil(exc.wait))  # type: ignore[attr-defined]
    if getattr(exc, "auth_header", None):  # set by APIView.handle_exception, as the status is
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, Mapping):
            fields = {name: [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
                      for name, msgs in detail.items()}
            names = ", ".join(fields)
            return invalid(f"invalid {'field' if len(fields) == 1 else 'fields'}: {names}", fields=fields)
        messages = detail if isinstance(detail, list) else [detail]
        return invalid(" ".join(str(m) for m in messages))
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return ApiError(str(exc.detail), code=str(code), status_code=exc.status_code, headers=headers)


def as_api_error(exc: Exception) -> ApiError | None:
    """The :class:`ApiError` for ``exc``; ``None`` when it is no known client-facing error."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, engine.FlowError):
        return from_engine(exc)
    if isinstance(exc, sessions.SessionNotFound):
        return not_found("session", str(exc))
    if isinstance(exc, RunStopped):
        return ApiError(str(exc), code="run_stopped", status_code=status.HTTP_409_CONFLICT,
                        extra={"action": exc.action})
    if isinstance(exc, registry.FlowNotFound):
        return not_found("flow", str(exc))
    if isinstance(exc, RequestDataTooBig):  # DRF reads JSON bodies through Django's size check
        return ApiError(f"the request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes "
                        "(DATA_UPLOAD_MAX_MEMORY_SIZE)", code="request_too_large",
                        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        return ApiError(str(exc) or "not found", code="not_found", status_code=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DjangoPermissionDenied):
        return ApiError(str(exc) or "permission denied", code="permission_denied",
                        status_code=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.APIException):
        return _from_drf(exc)
    return None


def error_body(error: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.error_code, "detail": str(error.detail)}
    if error.fields:
        body["fields"] = error.fields
    body.update(error.extra)
    return body


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF's hook: every exception becomes a JSON error (a bug is a logged 500)."""
    error = as_api_error(exc)
    request = context.get("request")
    if error is None:
        logger.error("error in %s", getattr(request, "path", "the flows API"), exc_info=exc)
        detail = "internal server error"
        if settings.DEBUG:
            detail = "".join(traceback.format_exception(exc))
        error = ApiError(detail, code="server_error", status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
    elif error.status_code >= 500:
        logger.warning("%s: %s", getattr(request, "path", "the flows API"), error.detail)
    return Response(error_body(error), status=error.status_code, headers=error.headers)
