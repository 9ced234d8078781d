"""Runs whose worker died: found by their silent heartbeat, and executed again elsewhere.

A ``running`` run whose heartbeat is older than ``FLOWS["RUN_STALE_SECONDS"]``
lost its worker. A background run becomes ``pending`` again and is enqueued;
the next worker continues it from its last checkpoint. A run that was
executing in a request or a command cannot be taken over: it is marked
failed. This runs when a worker starts a run, when a client waits for or
follows a run, and from ``manage.py flows_runs --recover`` (cron).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone

from flows.checkpointer import run_in_orm_thread
from flows.conf import flows_settings

logger = logging.getLogger("flows.runs")


def recover(run_ids: list[str] | None = None) -> list[str]:
    """Re-enqueues the stale background runs (of ``run_ids``, or all); returns their ids."""
    from flows.models import Run

    from .tasks import enqueue

    limit = timezone.now() - dt.timedelta(seconds=float(flows_settings.RUN_STALE_SECONDS))
    stale = Run.objects.filter(status="running", heartbeat_at__lt=limit)
    if run_ids is not None:
        stale = stale.filter(run_id__in=run_ids)
    recovered = []
    for run_id, origin, heartbeat, stop in stale.values_list("run_id", "origin", "heartbeat_at", "stop_requested"):
        again = Run.objects.filter(run_id=run_id, status="running", heartbeat_at=heartbeat)
        if origin != "background" or stop:
            again.update(status="cancelled" if stop else "failed", finished_at=timezone.now(),
                         error="the process running it stopped before it ended")
            continue
        if again.update(status="pending", worker="", stop_requested=""):
            logger.warning("run %s lost its worker (silent since %s): enqueued again", run_id, heartbeat)
            enqueue(run_id)
            recovered.append(run_id)
    return recovered


async def recover_stale_runs(run_ids: list[str] | None = None) -> list[str]:
    return await run_in_orm_thread(recover, run_ids)
