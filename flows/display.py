"""Readable renderings of state values for humans (admin pages, commands)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any


def _plain(value: Any) -> Any:
    """A JSON-friendly stand-in for values JSON cannot show as they are."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return "base64:" + base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    model_dump = getattr(value, "model_dump", None)  # pydantic
    if callable(model_dump):
        return model_dump(mode="json")
    return repr(value)


def pretty_json(value: Any) -> str:
    """Indented JSON; tuples show as lists, other non-JSON values readably."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain, sort_keys=False)
