"""What the API answers in: JSON (states with flows' encoder) and server-sent events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer

from flows.events import StateJSONEncoder


class StateJSONRenderer(JSONRenderer):
    """JSON that also renders every value a state can hold (see :mod:`flows.events`)."""

    encoder_class = StateJSONEncoder

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:  # a lone surrogate (from "\\ud800" in a request): escape, do not fail
            return ASCIIStateJSONRenderer().render(data, accepted_media_type, renderer_context)


class ASCIIStateJSONRenderer(JSONRenderer):
    """The same JSON with every character past ASCII escaped: what a lone surrogate needs."""

    encoder_class = StateJSONEncoder
    ensure_ascii = True


class EventStreamRenderer(BaseRenderer):
    """Lets a client ask for ``text/event-stream``; the view streams the events itself."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        raise NotImplementedError("event streams are written by the view, not rendered")


class Negotiation(DefaultContentNegotiation):
    """DRF's, except that an unknown ``?format=`` is 406 (DRF answers 404, as for a missing page)."""

    def filter_renderers(self, renderers: Iterable[BaseRenderer], format: str) -> list[BaseRenderer]:
        renderers = list(renderers)
        matching = [renderer for renderer in renderers if renderer.format == format]
        if not matching:
            formats = ", ".join(renderer.format for renderer in renderers)
            raise NotAcceptable(f"format {format!r} is not available here (available: {formats})")
        return matching
