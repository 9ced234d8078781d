"""``manage.py flows_runs [--recover] [--prune [--older-than DURATION]]``: look after runs.

Without options it lists the runs that have not ended. ``--recover`` enqueues
again the background runs whose worker went silent (run it from cron, every
minute, where nothing else looks at runs); ``--prune`` deletes the ended runs,
and their events, older than ``FLOWS["EVENTS_TTL_SECONDS"]`` (or ``--older-than``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from flows.conf import flows_settings
from flows.models import RUN_ENDED, Run
from flows.runs import redis_log
from flows.runs.tasks import recover_and_enqueue

from ..helpers import parse_duration


class Command(BaseCommand):
    help = "Lists unfinished runs; --recover resumes those whose worker died; --prune deletes old ended runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--recover", action="store_true", help="enqueue again the runs whose worker died")
        parser.add_argument("--prune", action="store_true", help="delete ended runs (and their events) older than "
                                                                 "FLOWS['EVENTS_TTL_SECONDS']")
        parser.add_argument("--older-than", help="with --prune: instead of EVENTS_TTL_SECONDS, e.g. 12h, 7d, 2w")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["older_than"] and not options["prune"]:
            raise CommandError("--older-than goes with --prune")
        if options["recover"]:
            recovered = recover_and_enqueue()
            self.stdout.write(_count(recovered.enqueued, "enqueued again"))
            self.stdout.write(_count(recovered.failed, "ended failed (they ran in a process that stopped)"))
        if options["prune"]:
            older_than = options["older_than"]
            seconds = parse_duration(older_than) if older_than else flows_settings.EVENTS_TTL_SECONDS
            limit = timezone.now() - dt.timedelta(seconds=float(seconds))
            _, by_model = Run.objects.filter(status__in=RUN_ENDED, finished_at__lt=limit).delete()
            runs = by_model.get("flows.Run", 0)
            if redis_log.enabled():
                self.stdout.write(f"{runs} run(s) deleted (their events in Redis expire by themselves)")
            else:
                self.stdout.write(f"{runs} run(s) and {by_model.get('flows.RunEvent', 0)} event(s) deleted")
        if not options["recover"] and not options["prune"]:
            unfinished = Run.objects.exclude(status__in=RUN_ENDED).order_by("pk")
            if not unfinished.exists():
                self.stdout.write("no unfinished runs")
            for run in unfinished:
                self.stdout.write(f"{run.run_id}  {run.flow_name}/{run.session_id}  {run.status}  {run.origin}  "
                                  f"{run.worker or '-'}  heartbeat {run.heartbeat_at or '-'}")


def _count(run_ids: list[str], what: str) -> str:
    return f"{len(run_ids)} run(s) {what}" + (f": {', '.join(run_ids)}" if run_ids else "")
