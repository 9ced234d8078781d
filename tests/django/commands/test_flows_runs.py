from __future__ import annotations

import datetime as dt

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from flows.models import Run, RunEvent

pytestmark = pytest.mark.django_db(transaction=True)


def make_run(run_id: str, status: str, **fields) -> Run:
    return Run.objects.create(run_id=run_id, flow_name="seed", session_id="s", status=status, **fields)


def test_lists_the_runs_that_have_not_ended(run):
    make_run("going", "running", worker="host:1")
    make_run("done", "succeeded")
    out = run("flows_runs")
    assert "going  seed/s  running" in out and "done" not in out


def test_says_when_nothing_is_unfinished(run):
    make_run("done", "succeeded")
    assert run("flows_runs") == "no unfinished runs\n"


def test_recover_enqueues_runs_whose_worker_went_silent(run, settings):
    settings.FLOWS = {**settings.FLOWS, "RUN_STALE_SECONDS": 5}
    silent = timezone.now() - dt.timedelta(seconds=60)
    make_run("stale", "running", origin="background", heartbeat_at=silent)
    make_run("alive", "running", origin="background", heartbeat_at=timezone.now())
    make_run("a-request", "running", origin="api", heartbeat_at=silent)
    out = run("flows_runs", "--recover")
    assert "1 run(s) enqueued again: stale\n" in out
    assert "1 run(s) ended failed (they ran in a process that stopped): a-request" in out
    assert dict(Run.objects.values_list("run_id", "status")) == {"stale": "pending", "alive": "running",
                                                                 "a-request": "failed"}
    from django_tasks_db.models import DBTaskResult

    assert DBTaskResult.objects.filter(args_kwargs__args=["stale"]).exists()


def test_prune_deletes_old_ended_runs_and_their_events(run):
    old = make_run("old", "succeeded", finished_at=timezone.now() - dt.timedelta(days=30))
    RunEvent.objects.create(run=old, seq=1, event="run_started", data="{}")
    make_run("recent", "succeeded", finished_at=timezone.now())
    make_run("going", "running")
    assert "1 run(s) and 1 event(s) deleted" in run("flows_runs", "--prune")
    assert sorted(Run.objects.values_list("run_id", flat=True)) == ["going", "recent"]
    assert "1 run(s)" in run("flows_runs", "--prune", "--older-than", "0")


def test_older_than_goes_with_prune(run):
    with pytest.raises(CommandError, match="--older-than goes with --prune"):
        run("flows_runs", "--older-than", "1d")
