"""Checkpointers: where a flow's state is saved after every node.

``RedisCheckpointer`` and ``SQLCheckpointer`` are imported on first use, so the
engine needs neither redis-py nor SQLAlchemy unless they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .checkpointer import BaseCheckpointer, Checkpointer
from .memory import InMemoryCheckpointer, InMemoryStore
from .store import Store, WriteRange
from .types import Change, Checkpoint, CheckpointMetadata, Lease, LeaseGrant, StoredCheckpoint, StoredWrite

if TYPE_CHECKING:
    from .redis import RedisCheckpointer, RedisStore
    from .sql import SQLCheckpointer, SQLStore

__all__ = [
    "BaseCheckpointer",
    "Change",
    "Checkpoint",
    "CheckpointMetadata",
    "Checkpointer",
    "InMemoryCheckpointer",
    "InMemoryStore",
    "Lease",
    "LeaseGrant",
    "RedisCheckpointer",
    "RedisStore",
    "SQLCheckpointer",
    "SQLStore",
    "Store",
    "StoredCheckpoint",
    "StoredWrite",
    "WriteRange",
]

_LAZY = {"RedisCheckpointer": ".redis", "RedisStore": ".redis", "SQLCheckpointer": ".sql", "SQLStore": ".sql"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
