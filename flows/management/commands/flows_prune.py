"""``manage.py flows_prune --keep N --older-than DURATION``: compact histories.

Run it from cron like Django's ``clearsessions``. Pruning keeps every head and
pending question, and what kept checkpoints need to read their state.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows import registry
from flows.engine import FlowError, run_sync

from ..helpers import flow_or_error, parse_duration


class Command(BaseCommand):
    help = ("Deletes old checkpoints of every session (or of one flow or session): keeps each head and the "
            "newest of its history; other branches (forks, edited messages) are deleted whatever their age.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--keep", type=int, help="keep the newest N checkpoints of each history")
        parser.add_argument("--older-than", help="delete checkpoints older than this: 3600, 30m, 12h, 7d, 2w")
        parser.add_argument("--flow", help="only this flow (default: every registered flow)")
        parser.add_argument("--session", help="only this session (needs --flow)")

    def handle(self, *args: Any, **options: Any) -> None:
        keep, older = options["keep"], options["older_than"]
        if keep is not None and keep < 1:
            raise CommandError("--keep must be at least 1")
        older_than = parse_duration(older) if older is not None else None
        if options["session"] and not options["flow"]:
            raise CommandError("--session needs --flow")
        names = [options["flow"]] if options["flow"] else registry.flow_names()
        total = 0
        for name in names:
            checkpointer = flow_or_error(name).checkpointer
            assert checkpointer is not None
            if keep is None and older_than is None and checkpointer.max_checkpoints_per_session is None:
                raise CommandError(
                    f"give --keep and/or --older-than (flow {name!r} sets no max_checkpoints_per_session)"
                )
            try:
                deleted = run_sync(checkpointer.aprune(options["session"], keep=keep, older_than=older_than))
            except FlowError as exc:
                raise CommandError(f"{type(exc).__name__}: {exc}") from exc
            self.stdout.write(f"{name}: {deleted} checkpoint(s) deleted")
            total += deleted
        self.stdout.write(self.style.SUCCESS(f"Pruned {total} checkpoint(s)."))
