"""Checkpointers: where a flow's state is saved after every node.

``RedisCheckpointer`` and ``SQLCheckpointer`` are imported on first use, so the
engine needs neither redis-py nor SQLAlchemy unless they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import BaseCheckpointer
from .memory import InMemoryCheckpointer
from .types import Change, Checkpoint, CheckpointMetadata

if TYPE_CHECKING:
    from .redis import RedisCheckpointer
    from .sql import SQLCheckpointer

__all__ = [
    "BaseCheckpointer",
    "Change",
    "Checkpoint",
    "CheckpointMetadata",
    "InMemoryCheckpointer",
    "RedisCheckpointer",
    "SQLCheckpointer",
]

_LAZY = {"RedisCheckpointer": ".redis", "SQLCheckpointer": ".sql"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
