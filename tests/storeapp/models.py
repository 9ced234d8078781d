"""The three storage models under this app's label, one with a column of the site's own."""

from __future__ import annotations

from django.db import models

from flows.base_models import AbstractCheckpoint, AbstractCheckpointWrite, AbstractFlowSession


class FlowSession(AbstractFlowSession):
    tenant = models.CharField(max_length=32, blank=True, default="")

    class Meta(AbstractFlowSession.Meta):
        db_table = "storeapp_sessions"


class Checkpoint(AbstractCheckpoint):
    class Meta(AbstractCheckpoint.Meta):
        db_table = "storeapp_checkpoints"


class CheckpointWrite(AbstractCheckpointWrite):
    class Meta(AbstractCheckpointWrite.Meta):
        db_table = "storeapp_writes"
