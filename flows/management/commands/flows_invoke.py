"""``manage.py flows_invoke <flow> <session> --input JSON [--resume JSON]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.conf import flows_settings
from flows.display import pretty_json
from flows.engine import FlowError
from flows.runs.recorder import current_origin

from ..helpers import flow_or_error, json_option


class Command(BaseCommand):
    help = "Runs a flow for one session and prints the resulting state as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("flow", help="registered flow name")
        parser.add_argument("session", help="session id")
        parser.add_argument("--input", help="JSON object of state updates (omit to continue with none)")
        parser.add_argument("--resume", help="JSON answer to the pending interrupt")
        parser.add_argument("--checkpoint", help="continue from this checkpoint (time travel)")
        parser.add_argument("--on-busy", choices=["wait", "reject"], help="default: FLOWS['ON_BUSY']")

    def handle(self, *args: Any, **options: Any) -> None:
        engine = flow_or_error(options["flow"])
        apply_state = json_option(options["input"], "--input")
        if apply_state is not None and not isinstance(apply_state, dict):
            raise CommandError("--input must be a JSON object of state fields, e.g. '{\"messages\": [\"hi\"]}'")
        kwargs: dict[str, Any] = {"on_busy": options["on_busy"] or flows_settings.ON_BUSY}
        if options["resume"] is not None:
            kwargs["resume"] = json_option(options["resume"], "--resume")
        if options["checkpoint"]:
            kwargs["checkpoint_id"] = options["checkpoint"]
        origin = current_origin.set("command")  # how the run is recorded
        try:
            if apply_state is not None:
                apply_state = engine.input_from_json(apply_state)
            state = engine.sync.invoke(apply_state, session_id=options["session"], **kwargs)
        except FlowError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            current_origin.reset(origin)
        self.stdout.write(pretty_json(state))
