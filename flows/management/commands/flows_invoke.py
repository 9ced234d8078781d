"""``manage.py flows_invoke <flow> <session> --input JSON|@FILE|- [--resume JSON] [--stream]``."""

from __future__ import annotations

import sys
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.conf import flows_settings
from flows.display import pretty_json
from flows.engine import FlowEngine, FlowError
from flows.events import dumps
from flows.runs.recorder import current_origin

from ..helpers import flow_or_error, json_option


class Command(BaseCommand):
    help = "Runs a flow for one session and prints the resulting state as JSON."
    #: ``call_command(..., stdin=StringIO(...))`` is what ``--input -`` reads (tests, scripts)
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("flow", help="registered flow name")
        parser.add_argument("session", help="session id")
        parser.add_argument(
            "--input",
            help="JSON object of state updates; @FILE reads it from a file, - from stdin (omit to continue with none)",
        )
        parser.add_argument("--resume", help="JSON answer to the pending interrupt")
        parser.add_argument("--checkpoint", help="continue from this checkpoint (time travel)")
        parser.add_argument("--on-busy", choices=["wait", "reject"], help="default: FLOWS['ON_BUSY']")
        parser.add_argument("--stream", action="store_true", help="print chunks as they arrive, then the state")

    def handle(self, *args: Any, **options: Any) -> None:
        engine = flow_or_error(options["flow"])
        apply_state = read_input(options["input"], options.get("stdin") or sys.stdin)
        if apply_state is not None and not isinstance(apply_state, dict):
            raise CommandError("--input must be a JSON object of state fields, e.g. '{\"messages\": [\"hi\"]}'")
        kwargs: dict[str, Any] = {"on_busy": options["on_busy"] or flows_settings.ON_BUSY}
        if options["resume"] is not None:
            kwargs["resume"] = json_option(options["resume"], "--resume")
        if options["checkpoint"]:
            kwargs["checkpoint_id"] = options["checkpoint"]
        origin = current_origin.set("command")  # how the run is recorded, streamed or not
        try:
            if apply_state is not None:
                apply_state = engine.input_from_json(apply_state)
            if options["stream"]:
                state = self.stream(engine, apply_state, options["session"], kwargs)
            else:
                state = engine.sync.invoke(apply_state, session_id=options["session"], **kwargs)
        except FlowError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            current_origin.reset(origin)
        self.stdout.write(pretty_json(state))

    def stream(self, engine: FlowEngine, apply_state: Any, session: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Writes each chunk the moment it arrives; returns the state ``invoke`` would have.

        The stream is read to its end: leaving it early would cancel the run.
        """
        state: dict[str, Any] = {}
        text = ""
        for event in engine.sync.stream(apply_state, session_id=session, **kwargs):
            if event["event"] == "chunk":
                chunk = event["chunk"]
                text = chunk if isinstance(chunk, str) else dumps(chunk)
                self.stdout.write(text, ending="")
                self.stdout.flush()
            elif event["event"] == "run_finished":
                state = event["state"]
            elif event["event"] == "interrupted":
                state = {**event["state"], "__interrupt__": event["interrupts"]}
        if text and not text.endswith("\n"):
            self.stdout.write("")  # the state starts on a line of its own
        return state


def read_input(value: str | None, stdin: IO[str]) -> Any:
    """``--input`` as JSON: given literally, from ``@FILE`` or from ``-`` (stdin).

    A file or stdin takes an input of any size; a literal one is bounded by the
    system's argument list.
    """
    if value == "-":
        try:
            text = stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"--input -: cannot read stdin: {exc}") from exc
        return json_option(text, "--input - (stdin)")
    if value is not None and value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CommandError(f"--input @{path}: cannot read the file: {reason}") from exc
        return json_option(text, f"--input @{path}")
    return json_option(value, "--input")

