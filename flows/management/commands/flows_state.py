"""``manage.py flows_state <flow> <session>``: the state, and optionally its history."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.display import pretty_json
from flows.engine import FlowError

from ..helpers import flow_or_error


class Command(BaseCommand):
    help = "Prints a session's state (at the head, or at a checkpoint) as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("flow", help="registered flow name")
        parser.add_argument("session", help="session id")
        parser.add_argument("--checkpoint", help="the state at this checkpoint instead of the head")
        parser.add_argument("--history", type=int, default=0, metavar="N", help="also list the latest N checkpoints")

    def handle(self, *args: Any, **options: Any) -> None:
        engine = flow_or_error(options["flow"])
        session_id = options["session"]
        if options["history"] < 0:
            raise CommandError("--history must be 0 or more")
        try:
            state = engine.sync.get_state(session_id, options["checkpoint"])
            history = engine.sync.list_checkpoints(session_id, limit=options["history"]) if options["history"] else []
        except FlowError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        if state is None:
            raise CommandError(f"session {session_id!r} of flow {options['flow']!r} has no checkpoint")
        self.stdout.write(pretty_json(state))
        for meta in history:
            updated = ", ".join(meta.updated_fields) or "-"
            self.stdout.write(f"{meta.checkpoint_id}  step {meta.step}  {meta.node or '-'}  updated: {updated}"
                              f"  next: {', '.join(meta.next) or '-'}")
