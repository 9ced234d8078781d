"""``manage.py flows_list``: the registered flows, their nodes and their stores."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from flows import registry


class Command(BaseCommand):
    help = "Lists the flows registered in settings.FLOWS."

    def handle(self, *args: Any, **options: Any) -> None:
        names = registry.flow_names()
        if not names:
            self.stdout.write("No flows are registered (settings.FLOWS['REGISTRY'] is empty).")
            return
        for name in names:
            config = registry.flow_config(name)
            try:
                engine = registry.get_flow(name)
            except (ImportError, ImproperlyConfigured, TypeError, ValueError) as exc:
                raise CommandError(f"flow {name!r} ({config.path}) cannot be loaded: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(name) + f"  {config.path}")
            self.stdout.write(f"  nodes: {', '.join(engine.nodes)}")
            self.stdout.write(f"  state: {', '.join(engine.state_fields)}")
            self.stdout.write(f"  store: {engine.checkpointer!r}")
