"""Readable renderings of state values for humans (admin pages, commands)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine.history import FieldChange, HistoryPage
from .events import dumps


def pretty_json(value: Any) -> str:
    """Indented JSON; tuples show as lists, other non-JSON values as the API sends them."""
    return dumps(value, indent=2)


@dataclass(frozen=True)
class ShownChange:
    """A field's change in a history page, with its values as JSON text (as the API shows them)."""

    change: FieldChange

    @property
    def field(self) -> str:
        return self.change.field

    @property
    def is_new(self) -> bool:
        return self.change.is_new

    @property
    def is_append(self) -> bool:
        return self.change.is_append

    @property
    def old_json(self) -> str:
        return "" if self.change.is_new else dumps(self.change.old)

    @property
    def new_json(self) -> str:
        return dumps(self.change.new)

    @property
    def appended_json(self) -> str:
        """The appended items (a list's new items without the brackets, a string's new text)."""
        written = self.change.written
        text = dumps(written)
        return text[1:-1] if isinstance(written, list) and written else text


def shown_history(page: HistoryPage) -> dict[str, Any]:
    """A history page for a template: each entry's metadata and its changes as :class:`ShownChange`."""
    return {
        "entries": [{"metadata": e.metadata, "changes": [ShownChange(c) for c in e.changes]} for e in page.entries],
        "next_before": page.next_before,
    }
