"""``manage.py flows_graph <flow>``: the graph as Mermaid (or as text with --details)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ..helpers import flow_or_error


class Command(BaseCommand):
    help = "Prints a flow's graph as a Mermaid flowchart."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("flow", help="registered flow name")
        parser.add_argument("--details", action="store_true", help="a plain-text description instead")

    def handle(self, *args: Any, **options: Any) -> None:
        engine = flow_or_error(options["flow"])
        self.stdout.write(engine.details() if options["details"] else engine.to_mermaid())
