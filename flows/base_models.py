"""Abstract storage models, importable without ``flows`` in ``INSTALLED_APPS``.

Like ``django.contrib.sessions.base_session``: a site that wants its own tables
(another app label, extra columns) subclasses these in one of its apps, as
``FlowSession``, ``Checkpoint`` and ``CheckpointWrite``, and hands them to
``DjangoCheckpointer(session_model=..., checkpoint_model=..., write_model=...)``;
``flows.models`` holds the concrete models the app ships with. The relations
between the three name their targets without an app label, so Django resolves
them in the app of each concrete subclass (a subclass may also override the
``session`` / ``head`` field to point elsewhere).

Storage model (see ``flows.engine.checkpointers.checkpointer``): a checkpoint row keeps
the indexed columns plus the encoded metadata; a write row keeps one field's
``set``/``extend`` at a ``seq``. Writes have no foreign key to their checkpoint
on purpose: retention keeps the writes that kept checkpoints build on even when
the checkpoint that made them is pruned.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import ExactCharField


class SessionStatus(models.TextChoices):
    IDLE = "idle", _("idle")
    RUNNING = "running", _("running")
    INTERRUPTED = "interrupted", _("interrupted")
    FAILED = "failed", _("failed")


class AbstractFlowSession(models.Model):
    """One conversation of one flow, and the lock that serialises its runs.

    ``head`` points at the newest checkpoint of the current branch. The lease
    columns implement the cross-process lock: ``lease_token`` only ever grows
    (it fences stale writers) and the row is kept when the session is reset so
    that tokens are never reused. ``last_seq`` is the highest checkpoint ``seq``
    ever written; ``checkpoint_count`` is kept exact by the checkpointer so
    lists never need a ``COUNT(*)`` over the checkpoint table.
    """

    flow_name = ExactCharField(_("flow"), max_length=100)
    session_id = ExactCharField(_("session id"), max_length=255)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="%(app_label)s_sessions",
        db_index=False,  # led by the (owner, -updated_at) index
    )
    status = models.CharField(
        _("status"), max_length=16, choices=SessionStatus.choices, default=SessionStatus.IDLE
    )
    last_error = models.TextField(_("last error"), blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # django-stubs resolves a relation without an app label at the abstract model, where there is
    # no app to look in; Django resolves it in each concrete subclass's app (see the module docstring)
    head = models.ForeignKey(  # type: ignore[misc]
        "Checkpoint",  # this app's: see the module docstring
        verbose_name=_("head checkpoint"),
        to_field="checkpoint_id",
        null=True,
        blank=True,
        editable=False,
        # The checkpointer moves the head in the same transaction as it deletes
        # checkpoints; no constraint (and no cascade bookkeeping) is needed, and
        # without one deletes of many checkpoints stay single fast DELETEs.
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    last_seq = models.BigIntegerField(default=0, editable=False)
    checkpoint_count = models.PositiveIntegerField(_("checkpoints"), default=0, editable=False)
    lease_token = models.BigIntegerField(default=0, editable=False)
    lease_until = models.DateTimeField(_("locked until"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, editable=False)

    class Meta:
        abstract = True
        verbose_name = _("flow session")
        verbose_name_plural = _("flow sessions")
        constraints = [
            models.UniqueConstraint(fields=["flow_name", "session_id"], name="%(app_label)s_session_per_flow"),
        ]
        indexes = [
            models.Index(fields=["-updated_at"], name="%(app_label)s_session_updated"),
            models.Index(fields=["owner", "-updated_at"], name="%(app_label)s_session_owner"),
            models.Index(fields=["expires_at"], name="%(app_label)s_session_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_name}/{self.session_id}"


class AbstractCheckpoint(models.Model):
    """A checkpoint: the columns queries need, plus the encoded metadata blob."""

    # relative to the concrete subclass's app, which django-stubs cannot see here (see head above)
    session = models.ForeignKey(  # type: ignore[misc]
        "FlowSession", on_delete=models.CASCADE, related_name="checkpoints", db_index=False
    )
    checkpoint_id = models.CharField(_("checkpoint id"), max_length=64, unique=True)
    seq = models.BigIntegerField()
    # NULL on purpose (DJ001): the engine's None (no parent: a session's first checkpoint; no node: a
    # checkpoint no node wrote) is kept apart from any string; NOT NULL would need a data migration
    parent_id = models.CharField(_("parent"), max_length=64, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(_("created"))
    run_id = models.CharField(_("run"), max_length=64)
    node = models.CharField(_("node"), max_length=255, null=True, blank=True)  # noqa: DJ001 (see parent_id)
    blob = models.BinaryField()

    class Meta:
        abstract = True
        verbose_name = _("checkpoint")
        verbose_name_plural = _("checkpoints")
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="%(app_label)s_checkpoint_seq"),
        ]

    def __str__(self) -> str:
        return self.checkpoint_id


class AbstractCheckpointWrite(models.Model):
    """One field's write at a ``seq``: ``set`` replaces, ``extend`` appends."""

    # relative to the concrete subclass's app, which django-stubs cannot see here (see head above)
    session = models.ForeignKey(  # type: ignore[misc]
        "FlowSession", on_delete=models.CASCADE, related_name="writes", db_index=False
    )
    seq = models.BigIntegerField()
    field = ExactCharField(max_length=255)
    op = models.CharField(max_length=8)
    blob = models.BinaryField()

    class Meta:
        abstract = True
        verbose_name = _("checkpoint write")
        verbose_name_plural = _("checkpoint writes")
        indexes = [
            # materialising a state: each field's writes in a seq range
            models.Index(fields=["session", "field", "seq"], name="%(app_label)s_write_field_seq"),
            # deleting and compacting: seq ranges across fields
            models.Index(fields=["session", "seq"], name="%(app_label)s_write_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.field}@{self.seq}"
