"""The app's own receivers of :mod:`flows.signals`: the session's row follows its runs."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from . import sessions
from .conf import flows_settings
from .signals import run_failed, run_finished, run_interrupted, run_started


@receiver(run_failed, dispatch_uid="flows.record_failure")
async def record_failure(sender: Any, *, flow_name: str, event: dict[str, Any], **kwargs: Any) -> None:
    """Marks the session failed with the error, for the admin and the API."""
    if event.get("session_id") is not None and flows_settings.SESSION_STATUS:
        error = sessions.failure_message(event.get("error") or {})
        await sessions.amark(flow_name, event["session_id"], "failed", error=error)


@receiver(run_started, dispatch_uid="flows.follow_status.started")
@receiver(run_finished, dispatch_uid="flows.follow_status.finished")
@receiver(run_interrupted, dispatch_uid="flows.follow_status.interrupted")
async def follow_status(sender: Any, *, flow_name: str, event: dict[str, Any], **kwargs: Any) -> None:
    """Keeps the row's status for stores that do not write it themselves (Redis, SQL)."""
    if event.get("session_id") is None or not flows_settings.SESSION_STATUS or sessions.store_keeps_status(flow_name):
        return
    await sessions.amark(flow_name, event["session_id"], sessions.STATUS_AFTER_EVENT[event["event"]])
