"""Copies of state values that share nothing mutable, cheaply for JSON-shaped data."""

from __future__ import annotations

import copy
from typing import Any, Iterable

IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes})


def frozen(items: Iterable[Any]) -> bool:
    """Whether every item is immutable, so a shallow copy of their list is enough."""
    return all(type(item) in IMMUTABLE for item in items)


def fresh(value: Any) -> Any:
    """A copy of ``value`` sharing nothing mutable with it."""
    kind = type(value)
    if kind in IMMUTABLE:
        return value
    if kind is list:
        return [fresh(item) for item in value]
    if kind is dict:
        return {key: fresh(item) for key, item in value.items()}
    return copy.deepcopy(value)
