"""Writing a run's row and its events (blocking; on flows' ORM thread pool).

Every write is fenced: it changes a row that is still ``running`` — and for a
background run, still held by this execution (``attempts``) — or nothing
(:class:`RunTakenOver`). A batch is the events and the row's update together,
atomically: on PostgreSQL in one statement (a data-modifying ``WITH``: one
round trip where a transaction takes four), elsewhere in one transaction.
With the Redis log (:mod:`.redis_log`) the events go to Redis just after.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field, Model, sql
from django.utils import timezone

from flows.events import dumps

from . import redis_log

logger = logging.getLogger("flows.runs")

#: ``(event id, event name, JSON)``
Event = tuple[int, str, str]


class RunTakenOver(Exception):
    """The run's row ended, or another execution took it over: this recorder may not write it."""


def held(run_id: str, attempt: int | None) -> Any:
    """The run's row while this execution may write it: still running (and, for a background run, its attempt)."""
    from flows.models import Run

    rows = Run.objects.filter(run_id=run_id, status="running")
    return rows if attempt is None else rows.filter(attempts=attempt)


def _column(model: type[Model], name: str | None = None) -> str:
    """The column of a concrete field of ``model`` (its primary key without ``name``)."""
    field = model._meta.pk if name is None else model._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise TypeError(f"{model.__name__}.{name} has no column")
    return field.column


def write(key: redis_log.RunKey, pk: int | None, create: dict[str, Any] | None, batch: list[Event],
          run_fields: dict[str, Any], attempt: int | None, unlogged: list[Event]) -> tuple[int | None, list[Event]]:
    """Writes ``batch`` and ``run_fields`` (inserting the row from ``create`` first, if given).

    Returns the row's pk (once known), and the events the Redis log did not
    take (for the next write to retry).
    """
    from flows.models import Run

    to_redis = redis_log.enabled()
    if batch:
        run_fields = {**run_fields, "last_event": batch[-1][0]}
    if not batch or to_redis:
        pk = _row(key.run_id, pk, create, run_fields, attempt)
    elif connections[router.db_for_write(Run)].vendor == "postgresql":
        pk = _in_one_statement(key.run_id, create, batch, run_fields, attempt)
    else:
        pk = _in_a_transaction(key.run_id, pk, create, batch, run_fields, attempt)
    return pk, log_to_redis(key, unlogged + batch) if to_redis else []


def _row(run_id: str, pk: int | None, create: dict[str, Any] | None, run_fields: dict[str, Any],
         attempt: int | None) -> int | None:
    """The row alone (no event rows to write): one statement, no transaction."""
    from flows.models import Run

    if create is not None:
        return Run.objects.create(run_id=run_id, **{**create, **run_fields}).pk
    if run_fields:
        rows = held(run_id, attempt) if pk is None else held(run_id, attempt).filter(pk=pk)
        if not rows.update(**run_fields):
            raise RunTakenOver(run_id)
    return pk


def _in_a_transaction(run_id: str, pk: int | None, create: dict[str, Any] | None, batch: list[Event],
                      run_fields: dict[str, Any], attempt: int | None) -> int:
    from flows.models import Run, RunEvent

    with transaction.atomic(using=router.db_for_write(Run)):
        if create is not None:
            pk = Run.objects.create(run_id=run_id, **{**create, **run_fields}).pk
        else:
            if pk is None:
                pk = held(run_id, attempt).values_list("pk", flat=True).first()
            if pk is None or not held(run_id, attempt).filter(pk=pk).update(**run_fields):
                raise RunTakenOver(run_id)
        RunEvent.objects.bulk_create([RunEvent(run_id=pk, seq=seq, event=kind, data=data)
                                      for seq, kind, data in batch])
    return pk


def _in_one_statement(run_id: str, create: dict[str, Any] | None, batch: list[Event],
                      run_fields: dict[str, Any], attempt: int | None) -> int:
    """PostgreSQL: the row's insert or fenced update and the events' insert, as one statement."""
    from flows.models import Run, RunEvent

    connection = connections[router.db_for_write(Run)]
    quote = connection.ops.quote_name
    if create is not None:
        meta = Run._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]
        insert = sql.InsertQuery(Run)
        insert.insert_values(fields, [Run(run_id=run_id, **{**create, **run_fields})])
        [(head, head_params)] = insert.get_compiler(connection=connection).as_sql()
    else:
        update = held(run_id, attempt).query.chain(sql.UpdateQuery)
        update.add_update_values(run_fields)
        head, head_params = update.get_compiler(connection=connection).as_sql()
    column = {name: quote(_column(RunEvent, name)) for name in ("run", "seq", "event", "data", "created_at")}
    run_pk = quote(_column(Run))
    statement = (
        f"WITH r AS ({head} RETURNING {quote(Run._meta.db_table)}.{run_pk}) "
        f"INSERT INTO {quote(RunEvent._meta.db_table)} "
        f"({column['run']}, {column['seq']}, {column['event']}, {column['data']}, {column['created_at']}) "
        f"SELECT r.{run_pk}, v.seq, v.event, v.data, STATEMENT_TIMESTAMP() "
        f"FROM r, (VALUES {', '.join(['(%s::integer, %s, %s)'] * len(batch))}) AS v(seq, event, data) "
        f"RETURNING {column['run']}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*head_params, *(value for event in batch for value in event)])
        row = cursor.fetchone()
    if row is None:  # the fence held nothing: nothing was written
        raise RunTakenOver(run_id)
    return row[0]


def log_to_redis(key: redis_log.RunKey, events: list[Event]) -> list[Event]:
    """Appends ``events`` to the Redis log; returns them if Redis could not be reached."""
    from redis.exceptions import RedisError

    if not events:
        return []
    try:
        redis_log.append(key, events)
    except RedisError:
        logger.warning("could not log events of run %s in Redis (kept for the next write)", key.run_id,
                       exc_info=True)
        return events
    return []


def forget(run_id: str) -> None:
    """Deletes a run that never started, with its events (a call refused before it began)."""
    from flows.models import Run

    Run.objects.filter(run_id=run_id, engine_run_id="").delete()


def end_unstarted(run_id: str, status: str, error: str, *, only_if: dict[str, Any]) -> bool:
    """Ends a run that is not executing: its status, and a last ``run_failed`` event.

    ``only_if`` are the fields the row must still have (a compare-and-set);
    returns whether it was ended. Every run's stream thus ends with an event.
    """
    from flows.models import Run, RunEvent

    with transaction.atomic(using=router.db_for_write(Run)):
        row = Run.objects.select_for_update().filter(run_id=run_id, **only_if).values(
            "pk", "last_event", "flow_name", "session_id", "engine_run_id").first()
        if row is None:
            return False
        event = {"event": "run_failed", "run_id": row["engine_run_id"] or run_id, "session_id": row["session_id"],
                 "node": None, "step": None, "error": {"type": "RunStopped", "message": error, "node": None}}
        last = (row["last_event"] + 1, "run_failed", dumps(event))
        if not redis_log.enabled():
            RunEvent.objects.create(run_id=row["pk"], seq=last[0], event=last[1], data=last[2])
        Run.objects.filter(pk=row["pk"]).update(status=status, error=error, finished_at=timezone.now(),
                                                last_event=last[0])
    if redis_log.enabled():  # followers end on the row's status if this does not reach Redis
        log_to_redis(redis_log.RunKey(row["flow_name"], row["session_id"], run_id), [last])
    return True
