"""The task a worker executes for a background run (Django's Tasks API)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from flows.conf import flows_settings

from .compat import task
from .execution import execute


@task()
async def execute_run(run_id: str) -> None:
    """Executes the background run ``run_id`` (see :mod:`flows.runs.execution`)."""
    from .recovery import recover_stale_runs

    await recover_stale_runs()
    await execute(run_id)


def enqueue(run_id: str, *, delay: float = 0.0) -> None:
    """Hands the run to the configured task backend and queue (blocking); ``delay`` seconds from now."""
    options: dict[str, Any] = {"backend": flows_settings.RUNS_TASK_BACKEND, "queue_name": flows_settings.RUNS_QUEUE}
    if delay:
        options["run_after"] = timezone.now() + dt.timedelta(seconds=delay)
    execute_run.using(**options).enqueue(run_id)
