"""A run driven by a task of its own, read by whoever started it — or by nobody.

A run started by a request or a socket must not depend on it: a client that
goes away stops receiving events, and the run goes on to its end,
checkpointed as usual, so the reply being written is not lost. Such a run
also stops when it is asked to (:mod:`flows.runs.stopping`), like a background
run: ``POST …/runs/{id}/cancel/``, or a newer run with ``on_busy``
``interrupt`` / ``rollback``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from flows.engine import FlowError

from .stopping import RunStopped, watch

logger = logging.getLogger("flows.runs")

#: Runs still going, kept referenced until they end.
_running: set[asyncio.Task[Any]] = set()


def running_runs() -> set[asyncio.Task[None]]:
    """The request-started runs of this process that have not ended (for tests and shutdown)."""
    return set(_running)


@dataclass(frozen=True, slots=True)
class _End:
    error: Exception | None


@dataclass(frozen=True, slots=True)
class Stoppable:
    """How a run started by a request is stopped on request (:mod:`flows.runs.stopping`)."""

    run_id: str
    #: records the stop (and undoes the run's work after a rollback); returns the run's last event
    end: Callable[[str], Awaitable[dict[str, Any]]]


class RunEvents:
    """A run's events, read by a request, produced by a task that does not depend on it."""

    def __init__(self, events: AsyncIterator[dict[str, Any]], stoppable: Stoppable | None = None) -> None:
        #: the id of the ``Run`` it is recorded as (when stoppable)
        self.run_id = stoppable.run_id if stoppable is not None else None
        self._queue: asyncio.Queue[dict[str, Any] | _End] = asyncio.Queue()
        self._getter: asyncio.Future[dict[str, Any] | _End] | None = None
        self._reader_gone = False
        self._stoppable = stoppable
        self._watcher: asyncio.Task[str] | None = None
        task = asyncio.ensure_future(self._drive(events))
        _running.add(task)
        task.add_done_callback(_running.discard)
        if stoppable is not None:
            self._watcher = asyncio.ensure_future(watch(stoppable.run_id, task))
            _running.add(self._watcher)
            self._watcher.add_done_callback(_running.discard)

    def _stop_action(self) -> str:
        """The stop request that cancelled the run ('' if none did)."""
        watcher = self._watcher
        if watcher is None or not watcher.done() or watcher.cancelled() or watcher.exception() is not None:
            return ""
        return watcher.result()

    async def _drive(self, events: AsyncIterator[dict[str, Any]]) -> None:
        error: Exception | None = None
        try:
            async for event in events:
                self._put(event)
        except asyncio.CancelledError:
            action = self._stop_action()
            if action and self._stoppable is not None:  # stopped on request: the run ends here
                self._put(await self._stoppable.end(action))
                error = RunStopped(action)
                return
            # the worker is shutting down: the run stops at its last checkpoint
            error = RuntimeError("the run was cancelled (the server is shutting down)")
            raise
        except Exception as exc:  # the run's failure, handed to whoever reads (run_failed came first)
            error = exc
            if self._reader_gone and not isinstance(exc, FlowError):
                logger.error("a run nobody reads any more failed", exc_info=exc)
        finally:
            self._put(_End(error))

    async def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, ``None`` once the run ended; raises the run's error.

        ``TimeoutError`` after ``timeout`` seconds without an event (nothing
        is lost: the same wait goes on at the next call).
        """
        if self._getter is None:
            self._getter = asyncio.ensure_future(self._queue.get())
        done, _ = await asyncio.wait({self._getter}, timeout=timeout)
        if not done:
            raise TimeoutError
        item, self._getter = self._getter.result(), None
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            return None
        return item

    def stop_reading(self) -> None:
        """The reader is gone: the run goes on, its events are dropped."""
        self._reader_gone = True
        if self._getter is not None:
            self._getter.cancel()
            self._getter = None
        while not self._queue.empty():
            self._queue.get_nowait()

    def _put(self, item: dict[str, Any] | _End) -> None:
        if not self._reader_gone or isinstance(item, _End):
            self._queue.put_nowait(item)
