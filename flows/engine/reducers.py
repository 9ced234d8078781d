"""Reducers that ship with the engine.

A reducer ``(old, new) -> merged`` is attached to a state field with
``Annotated[T, reducer]``. Reducers marked ``appends`` let checkpointers store
only the appended items without comparing the old and new values.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any


def append(old: list[Any] | None, new: Any) -> list[Any]:
    """Appends ``new`` (an item, or a list of items) to the list ``old``."""
    items = new if isinstance(new, list) else [new]
    return (old or []) + items


append.appends = True  # type: ignore[attr-defined]


def appends(reducer: Callable[..., Any]) -> bool:
    """Whether ``reducer(old, new)`` is known to equal ``old + new`` for lists and strings."""
    return reducer is operator.add or getattr(reducer, "appends", False)
