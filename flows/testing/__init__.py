"""Testing a site's flows (as ``channels.testing`` is for consumers).

* :func:`override_flows` — the flows on in-memory checkpointers for a test (a
  decorator or a context manager, like ``override_settings``): nothing is
  written to the database, so Django's ``TestCase`` works;
* :func:`run` / :func:`arun` — a flow to its end or to its next question,
  returning the state (with ``"__interrupt__"`` when it waits);
* :func:`events` / :func:`aevents` — the events of a ``stream()``, and
  :func:`streamed_text` — what its chunks said;
* the pytest fixture ``flows_in_memory`` (:mod:`flows.testing.pytest_plugin`,
  loaded by pytest when flows is installed).

A test that keeps the database checkpointer needs real commits
(``TransactionTestCase``, ``django_db(transaction=True)``): flows writes from
its own thread pool, which a ``TestCase``'s transaction hides. :func:`run`
and :func:`events` say so instead of hanging or reading nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import connections
from django.test.utils import override_settings

from flows import registry
from flows.checkpointer import DjangoCheckpointer, close_pool
from flows.conf import flows_settings
from flows.engine import FlowEngine

__all__ = ["HiddenWritesError", "aevents", "arun", "close_connections", "events", "override_flows", "run",
           "streamed_text"]

#: closes the connections of flows' thread pool (before a test run drops its databases)
close_connections = close_pool

SESSION = "test"


def override_flows(flows: Mapping[str, str] | None = None, *, database: bool = False) -> override_settings:
    """``FLOWS`` with every flow on its own in-memory checkpointer (and ``flows`` added or replaced).

    ``flows`` maps names to dotted paths, as ``FLOWS["REGISTRY"]``. Nothing
    is written to the database: runs are not recorded (``RECORD_RUNS``) and
    session rows do not follow them (``SESSION_STATUS``). With ``database``
    both stay on, for tests of the API or the admin, which need committed
    transactions.
    """
    current = dict(getattr(settings, "FLOWS", {}) or {})
    memory = {"BACKEND": "memory"}
    entries = {name: _in_memory(entry, memory)
               for name, entry in {**(current.get("REGISTRY") or {}), **(flows or {})}.items()}
    return override_settings(FLOWS={**current, "REGISTRY": entries, "CHECKPOINTER": memory,
                                    "RECORD_RUNS": database, "SESSION_STATUS": database})


def _in_memory(entry: Any, memory: dict[str, str]) -> Any:
    """A registry entry whose own checkpointer, if it names one, is replaced by the in-memory one."""
    if isinstance(entry, Mapping) and "CHECKPOINTER" in entry:
        return {**entry, "CHECKPOINTER": memory}
    return entry


class HiddenWritesError(RuntimeError):
    """A flow that writes to the database was run inside a ``TestCase``'s transaction."""


def _engine(flow: str | FlowEngine) -> FlowEngine:
    engine = registry.get_flow(flow) if isinstance(flow, str) else flow
    _refuse_hidden_writes(engine)
    return engine


def _refuse_hidden_writes(engine: FlowEngine) -> None:
    """Refuses to run where the database writes would be invisible: inside a ``TestCase``."""
    aliases = set()
    if isinstance(engine.checkpointer, DjangoCheckpointer):
        aliases.add(engine.checkpointer.using)
    if flows_settings.RECORD_RUNS or flows_settings.SESSION_STATUS:
        aliases.add("default")
    for alias in aliases:
        if any(getattr(block, "_from_testcase", False) for block in connections[alias].atomic_blocks):
            raise HiddenWritesError(
                "flows writes checkpoints and runs on connections of its own, which do not see a TestCase's "
                "transaction: decorate the test with flows.testing.override_flows() (in memory), or use "
                "TransactionTestCase / pytest.mark.django_db(transaction=True)"
            )


def run(flow: str | FlowEngine, input: Mapping[str, Any] | None = None, *, session_id: str = SESSION,
        **options: Any) -> dict[str, Any]:
    """Runs ``flow`` (a registered name or an engine) to its end or next question; returns the state.

    ``options`` are :meth:`FlowEngine.invoke`'s (``resume=``, ``checkpoint_id=``...).
    """
    return _engine(flow).sync.invoke(input, session_id=session_id, **options)


async def arun(flow: str | FlowEngine, input: Mapping[str, Any] | None = None, *, session_id: str = SESSION,
               **options: Any) -> dict[str, Any]:
    """:func:`run` for async tests."""
    return await _engine(flow).invoke(input, session_id=session_id, **options)


def events(flow: str | FlowEngine, input: Mapping[str, Any] | None = None, *, session_id: str = SESSION,
           **options: Any) -> list[dict[str, Any]]:
    """Every event of one ``stream()`` of ``flow``, in order (a failure is raised after its event)."""
    return list(_engine(flow).sync.stream(input, session_id=session_id, **options))


async def aevents(flow: str | FlowEngine, input: Mapping[str, Any] | None = None, *, session_id: str = SESSION,
                  **options: Any) -> list[dict[str, Any]]:
    """:func:`events` for async tests."""
    return [event async for event in _engine(flow).stream(input, session_id=session_id, **options)]


def streamed_text(found: Iterable[dict[str, Any]]) -> str:
    """What the text chunks among ``found`` events said, joined."""
    return "".join(event["chunk"] for event in found if event["event"] == "chunk" and isinstance(event["chunk"], str))
