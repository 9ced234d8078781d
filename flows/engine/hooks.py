"""Lifecycle hooks: subclass :class:`FlowEngineHooks` and override what you need."""

from __future__ import annotations

from typing import Any

from .checkpointers.types import CheckpointMetadata

EVENT_HOOKS = {
    "run_started": "on_run_started",
    "node_started": "on_node_started",
    "chunk": "on_chunk",
    "node_finished": "on_node_finished",
    "interrupted": "on_interrupted",
    "run_finished": "on_run_finished",
    "run_failed": "on_run_failed",
}


class FlowEngineHooks:
    """Called as a run progresses; each method may be sync or ``async``.

    Every ``on_<event>`` receives the same event dict that ``stream()`` yields.
    ``on_checkpoint`` receives each saved checkpoint's metadata. A hook that
    raises fails the run, so keep them small (log, count, notify).
    """

    def on_run_started(self, event: dict[str, Any]) -> Any: ...
    def on_node_started(self, event: dict[str, Any]) -> Any: ...
    def on_chunk(self, event: dict[str, Any]) -> Any: ...
    def on_node_finished(self, event: dict[str, Any]) -> Any: ...
    def on_interrupted(self, event: dict[str, Any]) -> Any: ...
    def on_run_finished(self, event: dict[str, Any]) -> Any: ...
    def on_run_failed(self, event: dict[str, Any]) -> Any: ...
    def on_checkpoint(self, metadata: CheckpointMetadata) -> Any: ...

    def overridden(self) -> set[str]:
        """The hook names this subclass implements (others cost nothing at run time)."""
        names = set(EVENT_HOOKS.values()) | {"on_checkpoint"}
        return {name for name in names if getattr(type(self), name) is not getattr(FlowEngineHooks, name)}
