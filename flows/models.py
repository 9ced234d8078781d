"""The tables the app ships with; their fields live in ``flows.base_models``."""

from __future__ import annotations

from .base_models import (
    AbstractCheckpoint,
    AbstractCheckpointWrite,
    AbstractFlowSession,
    SessionStatus,
)

__all__ = ["Checkpoint", "CheckpointWrite", "FlowSession", "SessionStatus"]


class FlowSession(AbstractFlowSession):
    class Meta(AbstractFlowSession.Meta):
        pass


class Checkpoint(AbstractCheckpoint):
    class Meta(AbstractCheckpoint.Meta):
        pass


class CheckpointWrite(AbstractCheckpointWrite):
    class Meta(AbstractCheckpointWrite.Meta):
        pass
