"""The task a worker executes for a background run (Django's Tasks API), and handing runs to it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from flows.checkpointer import run_in_orm_thread
from flows.conf import flows_settings

from .compat import task
from .execution import execute
from .recovery import Recovered, recover


@task()
async def execute_run(run_id: str) -> None:
    """Executes the background run ``run_id`` (see :mod:`flows.runs.execution`)."""
    await recover_stale_runs()
    for other, delay in await execute(run_id):
        await run_in_orm_thread(enqueue, other, delay=delay)


def enqueue(run_id: str, *, delay: float = 0.0) -> None:
    """Hands the run to the queue (blocking); ``delay`` seconds from now.

    The queue is ``FLOWS["RUNS_ENQUEUE"]`` (a site's own: RQ, Celery...), or
    the configured backend and queue of Django's Tasks API.
    """
    if flows_settings.RUNS_ENQUEUE:
        import_string(flows_settings.RUNS_ENQUEUE)(run_id, delay)
        return
    options: dict[str, Any] = {"backend": flows_settings.RUNS_TASK_BACKEND, "queue_name": flows_settings.RUNS_QUEUE}
    if delay:
        options["run_after"] = timezone.now() + dt.timedelta(seconds=delay)
    execute_run.using(**options).enqueue(run_id)


def recover_and_enqueue(run_ids: list[str] | None = None) -> Recovered:
    """:func:`flows.runs.recovery.recover`, then the recovered background runs to the queue (blocking)."""
    recovered = recover(run_ids)
    for run_id in recovered.enqueued:
        enqueue(run_id)
    return recovered


async def recover_stale_runs(run_ids: list[str] | None = None) -> Recovered:
    return await run_in_orm_thread(recover_and_enqueue, run_ids)
