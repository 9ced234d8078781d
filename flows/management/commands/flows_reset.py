"""``manage.py flows_reset <flow> <session>``: delete a session's checkpoints."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.engine import FlowError

from ..helpers import flow_or_error


class Command(BaseCommand):
    help = "Deletes every checkpoint of a session, so the next invoke starts fresh."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("flow", help="registered flow name")
        parser.add_argument("session", help="session id")

    def handle(self, *args: Any, **options: Any) -> None:
        engine = flow_or_error(options["flow"])
        try:
            deleted = engine.sync.delete_checkpoints(options["session"])
        except FlowError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        if not deleted:  # a typo in the session id must not look like a reset that worked
            raise CommandError(f"no session {options['session']!r} of flow {options['flow']!r}: nothing to reset")
        self.stdout.write(f"Reset {options['flow']}/{options['session']}: {deleted} checkpoint(s) deleted.")
