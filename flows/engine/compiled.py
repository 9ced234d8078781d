"""What a run is given: the built flow, frozen, and one request.

:class:`FlowEngine` is the builder a user holds and may still configure;
:class:`CompiledFlow` is what the runner reads, so nothing changed on the
engine afterwards reaches a run that has started, and the runner depends on
this module only, never on the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .checkpointers.checkpointer import Checkpointer
from .checkpointers.types import CheckpointMetadata, Lease
from .graph import Graph
from .schedule import Schedule
from .serde import JsonSerializer
from .state import StateSchema

#: when a run's checkpoints are written (docs/engine.md, "Durability")
DURABILITY_MODES = ("sync", "async", "exit")
#: receives each event of a run as it happens
Emit = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A validated graph with everything its runs share."""

    graph: Graph
    schema: StateSchema
    serializer: JsonSerializer
    checkpointer: Checkpointer | None
    #: the hooks called with each new checkpoint's metadata
    on_checkpoint: tuple[Callable[..., Any], ...] = ()


@dataclass(slots=True)
class RunRequest:
    """One run to execute: where it starts and how it reports."""

    run_id: str
    session_id: str | None
    state: dict[str, Any]
    schedule: Schedule
    #: the checkpoint it continues from (``None``: a fresh session, or no checkpointer)
    parent: CheckpointMetadata | None
    lease: Lease | None
    emit: Emit | None
    max_steps: int
    #: when checkpoints are written: ``sync``, ``async`` or ``exit`` (see docs/engine.md)
    durability: str = "sync"
