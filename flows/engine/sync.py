"""Driving flows from sync code (Django views, admin actions, commands, a shell).

Calls run on one background event loop per process, so connection pools bound
to that loop are reused between calls. Calling from inside a running event
loop is refused with a clear error: async code should ``await`` instead.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Awaitable, Iterator, TypeVar

if TYPE_CHECKING:
    from .flow import FlowEngine

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _forget_loop() -> None:
    """In a forked child the loop's thread does not exist: start afresh."""
    global _lock, _loop
    _lock = threading.Lock()
    _loop = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loop)


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="flows-sync-loop", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_sync(awaitable: Awaitable[T]) -> T:
    """Runs ``awaitable`` to completion from sync code and returns its result."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        raise RuntimeError(
            "flows: a sync call was made from inside a running event loop; use the async API (await ...) there"
        )
    future: Future[T] = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), _background_loop())
    return future.result()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


class SyncFlow:
    """The blocking twin of a :class:`FlowEngine`: same methods, same arguments."""

    def __init__(self, flow: "FlowEngine") -> None:
        self._flow = flow

    def invoke(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return run_sync(self._flow.invoke(*args, **kwargs))

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Yields events as they happen (each one fetched from the background loop)."""
        events = self._flow.stream(*args, **kwargs)
        try:
            while True:
                try:
                    yield run_sync(events.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            run_sync(events.aclose())

    def get_state(self, *args: Any, **kwargs: Any):
        return run_sync(self._flow.get_state(*args, **kwargs))

    def get_metadata(self, *args: Any, **kwargs: Any):
        return run_sync(self._flow.get_metadata(*args, **kwargs))

    def get_checkpoint(self, *args: Any, **kwargs: Any):
        return run_sync(self._flow.get_checkpoint(*args, **kwargs))

    def list_checkpoints(self, *args: Any, **kwargs: Any):
        return run_sync(self._flow.list_checkpoints(*args, **kwargs))

    def update_state(self, *args: Any, **kwargs: Any):
        return run_sync(self._flow.update_state(*args, **kwargs))

    def delete_checkpoints(self, *args: Any, **kwargs: Any):
        return run_sync(self._flow.delete_checkpoints(*args, **kwargs))

    def reset_session(self, *args: Any, **kwargs: Any):
        return run_sync(self._flow.reset_session(*args, **kwargs))
