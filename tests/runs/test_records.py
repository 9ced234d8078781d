"""Writing a run's row and its events: atomic and fenced, on SQLite (a transaction) and PostgreSQL (one statement)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connections

from flows.models import Run, RunEvent
from flows.runs import records
from flows.runs.redis_log import RunKey

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "postgres"])


class ToDatabase:
    """Sends the runs app's rows to one database."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model, **hints):
        return self.alias if model in (Run, RunEvent) else None

    db_for_write = db_for_read


@pytest.fixture(params=["default", "postgres"])
def database(request, settings):
    settings.DATABASE_ROUTERS = [ToDatabase(request.param)]
    return request.param


def events(*ids: int) -> list[records.Event]:
    return [(n, "node_started", f'{{"n": {n}}}') for n in ids]


def stored(alias: str, run_id: str) -> list[tuple[int, str]]:
    return list(RunEvent.objects.using(alias).filter(run__run_id=run_id).order_by("seq").values_list("seq", "data"))


def test_a_new_run_and_its_first_events_are_written_together(database):
    create = {"flow_name": "chat", "session_id": "s", "status": "running", "origin": "api"}
    pk, unlogged = records.write(RunKey("chat", "s", "r1"), None, create, events(1, 2), {}, None, [])
    assert unlogged == []
    run = Run.objects.using(database).get(run_id="r1")
    assert run.pk == pk and run.last_event == 2 and run.status == "running"
    assert stored(database, "r1") == [(1, '{"n": 1}'), (2, '{"n": 2}')]
    assert connections[database].vendor in ("sqlite", "postgresql")


def test_a_batch_updates_the_row_it_holds(database):
    Run.objects.using(database).create(run_id="r2", flow_name="chat", session_id="s", status="running", attempts=3)
    pk, _ = records.write(RunKey("chat", "s", "r2"), None, None, events(1, 2, 3), {"status": "succeeded"}, 3, [])
    run = Run.objects.using(database).get(run_id="r2")
    assert run.pk == pk and run.status == "succeeded" and run.last_event == 3
    assert [seq for seq, _ in stored(database, "r2")] == [1, 2, 3]


@pytest.mark.parametrize("row", [{"status": "failed", "attempts": 1}, {"status": "running", "attempts": 2}])
def test_a_writer_that_lost_its_row_writes_nothing(database, row):
    """The row ended meanwhile, or another execution (a higher attempt) took the run over."""
    Run.objects.using(database).create(run_id="r3", flow_name="chat", session_id="s", **row)
    with pytest.raises(records.RunTakenOver):
        records.write(RunKey("chat", "s", "r3"), None, None, events(1), {"status": "succeeded"}, 1, [])
    assert stored(database, "r3") == []
    assert Run.objects.using(database).get(run_id="r3").status == row["status"]


def test_an_event_written_twice_fails_the_whole_batch(database):
    """The unique (run, seq): a batch lands whole or not at all."""
    Run.objects.using(database).create(run_id="r4", flow_name="chat", session_id="s", status="running")
    records.write(RunKey("chat", "s", "r4"), None, None, events(1), {}, None, [])
    with pytest.raises(IntegrityError):
        records.write(RunKey("chat", "s", "r4"), None, None, events(2, 1), {"status": "succeeded"}, None, [])
    assert [seq for seq, _ in stored(database, "r4")] == [1]
    assert Run.objects.using(database).get(run_id="r4").status == "running"
