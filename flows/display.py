"""Readable renderings of state values for humans (admin pages, commands)."""

from __future__ import annotations

from typing import Any

from .events import dumps


def pretty_json(value: Any) -> str:
    """Indented JSON; tuples show as lists, other non-JSON values as the API sends them."""
    return dumps(value, indent=2)
