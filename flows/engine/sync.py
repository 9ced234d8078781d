"""Driving flows from sync code (Django views, admin actions, commands, a shell): :func:`run_sync`.

Calls run on one background event loop per process, so connection pools bound
to that loop are reused between calls. Calling from inside a running event
loop is refused with a clear error: async code should ``await`` instead.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import TypeVar

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
