"""Runs whose process died: found by their silent heartbeat, and executed again elsewhere.

A ``running`` run whose heartbeat is older than ``FLOWS["RUN_STALE_SECONDS"]``
(at least three heartbeats) lost its process. A background run becomes
``pending`` again and is enqueued; the next worker continues it from its last
checkpoint, or ends it as it was asked to (a pending stop request is kept). A
run that was executing in a request, a socket or a command cannot be taken
over: it ends ``failed``. This runs when a worker starts a run, when a client
looks at a run, and from ``manage.py flows_runs --recover`` (cron).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.utils import timezone

from flows.conf import flows_settings

from .recorder import HEARTBEAT_SECONDS
from .records import end_unstarted

logger = logging.getLogger("flows.runs")


def stale_after() -> float:
    """Seconds of silence after which a running run lost its process."""
    return max(float(flows_settings.RUN_STALE_SECONDS), 3 * HEARTBEAT_SECONDS)


@dataclass
class Recovered:
    """What :func:`recover` did: the runs enqueued again, and those ended ``failed``."""

    enqueued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.enqueued or self.failed)


def recover(run_ids: list[str] | None = None) -> Recovered:
    """Deals with the stale runs (of ``run_ids``, or all): rows only; the caller enqueues ``enqueued``."""
    from flows.models import Run

    limit = timezone.now() - dt.timedelta(seconds=stale_after())
    stale = Run.objects.filter(status="running", heartbeat_at__lt=limit)
    if run_ids is not None:
        stale = stale.filter(run_id__in=run_ids)
    recovered = Recovered()
    for run_id, origin, heartbeat in stale.values_list("run_id", "origin", "heartbeat_at"):
        if origin != "background":
            if end_unstarted(run_id, "failed", "the process running it stopped before it ended",
                             only_if={"status": "running", "heartbeat_at": heartbeat}):
                recovered.failed.append(run_id)
            continue
        if Run.objects.filter(run_id=run_id, status="running", heartbeat_at=heartbeat).update(
            status="pending", worker=""
        ):
            logger.warning("run %s lost its worker (silent since %s): pending again", run_id, heartbeat)
            recovered.enqueued.append(run_id)
    return recovered
