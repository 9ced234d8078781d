"""pytest fixtures of :mod:`flows.testing` (registered as the ``flows`` plugin when flows is installed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import override_flows


@pytest.fixture
def flows_in_memory() -> Iterator[None]:
    """Every registered flow on its own in-memory checkpointer for the test, no runs recorded."""
    with override_flows():
        yield
