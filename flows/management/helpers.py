"""Argument handling shared by the ``flows_*`` management commands."""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.management.base import CommandError

from flows import registry
from flows.engine import FlowEngine

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def flow_or_error(name: str) -> FlowEngine:
    try:
        return registry.get_flow(name)
    except registry.FlowNotFound as exc:
        raise CommandError(str(exc)) from exc


def json_option(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option} is not valid JSON: {exc}") from exc


def parse_duration(text: str) -> float:
    """``90``, ``45s``, ``30m``, ``12h``, ``7d`` or ``2w``, in seconds."""
    match = _DURATION.match(text)
    if not match:
        raise CommandError(f"--older-than {text!r} is not a duration: use e.g. 3600, 30m, 12h, 7d or 2w")
    return float(match.group(1)) * _UNITS[match.group(2)]
