"""The tables the app ships with; their fields live in ``flows.base_models``."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .base_models import (
    AbstractCheckpoint,
    AbstractCheckpointWrite,
    AbstractFlowSession,
    SessionStatus,
)
from .events import StateJSONEncoder
from .fields import ExactCharField

__all__ = ["Checkpoint", "CheckpointWrite", "FlowSession", "Run", "RunEvent", "RunStatus", "SessionStatus"]


class FlowSession(AbstractFlowSession):
    class Meta(AbstractFlowSession.Meta):
        pass


class Checkpoint(AbstractCheckpoint):
    class Meta(AbstractCheckpoint.Meta):
        pass


class CheckpointWrite(AbstractCheckpointWrite):
    class Meta(AbstractCheckpointWrite.Meta):
        pass


class RunStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    INTERRUPTED = "interrupted", _("interrupted (a question is pending)")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    CANCELLED = "cancelled", _("cancelled")


#: A run in one of these has ended; nothing changes it any more.
RUN_ENDED = (RunStatus.INTERRUPTED, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Run(models.Model):
    """One call of a flow on a session: what was asked, how it went, and its events.

    Background runs (``POST …/runs/``) are created ``pending`` and executed by a
    task worker; runs started any other way (invoke, the admin, a command, a
    socket) are recorded as they start. ``stop_requested`` asks the worker that
    executes the run to stop it (``cancel`` keeps what it checkpointed,
    ``rollback`` also discards it); ``heartbeat_at`` shows that worker is alive.
    """

    run_id = models.CharField(_("run id"), max_length=32, unique=True)
    flow_name = ExactCharField(_("flow"), max_length=100)
    session_id = ExactCharField(_("session id"), max_length=255)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="flow_runs",
    )
    origin = models.CharField(_("started by"), max_length=16, default="background")
    # what was asked
    input = models.JSONField(_("input"), null=True, blank=True, encoder=StateJSONEncoder)
    has_resume = models.BooleanField(default=False)
    resume = models.JSONField(_("resume"), null=True, blank=True, encoder=StateJSONEncoder)
    checkpoint_id = models.CharField(_("from checkpoint"), max_length=64, blank=True, default="")
    on_busy = models.CharField(_("if busy"), max_length=16, default="wait")
    # how it went
    status = models.CharField(_("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    error = models.TextField(_("error"), blank=True, default="")
    engine_run_id = models.CharField(max_length=64, blank=True, default="")
    base_checkpoint_id = models.CharField(max_length=64, blank=True, default="")
    head_checkpoint_id = models.CharField(_("head checkpoint"), max_length=64, blank=True, default="")
    interrupts = models.JSONField(default=list, blank=True, encoder=StateJSONEncoder)
    stop_requested = models.CharField(max_length=16, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text=_("how many times a worker began executing it"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_event = models.PositiveIntegerField(default=0, help_text=_("the id of its newest event"))

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        indexes = [
            models.Index(fields=["flow_name", "session_id", "-id"], name="flows_run_session"),
            models.Index(fields=["status", "heartbeat_at"], name="flows_run_status"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_name}/{self.session_id}/{self.run_id}"


class RunEvent(models.Model):
    """One event of a run, as the engine emitted it, with its per-run id (``seq``, from 1)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)
    seq = models.PositiveIntegerField()
    event = models.CharField(max_length=32)
    data = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("run event")
        verbose_name_plural = _("run events")
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="flows_run_event_seq")]
        indexes = [models.Index(fields=["created_at"], name="flows_run_event_created")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.event}"
