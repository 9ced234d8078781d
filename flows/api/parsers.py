"""The API's request bodies: JSON objects, size-capped before they are read in full."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .errors import ApiError


def body_limit() -> int | None:
    """Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB by default; ``None``: no limit)."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large(limit: int) -> ApiError:
    return ApiError(
        f"the request body is over {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)",
        code="request_too_large",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


class LimitedJSONParser(JSONParser):
    """JSON (UTF-8, no ``NaN``), refused with 413 past the size limit, before parsing.

    DRF reads the body as a stream, which Django's own size check does not see.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = body_limit()
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise too_large(limit)
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"the body is not valid JSON: {exc}") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
