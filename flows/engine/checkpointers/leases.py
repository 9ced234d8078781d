"""Keeping a held session lease alive."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .types import Lease

if TYPE_CHECKING:
    from .base import BaseCheckpointer


class KeepAlive:
    """Renews a lease every third of its length while it is held.

    A timer rather than a task per lease: most runs end before the first
    renewal is due, and a cancelled timer costs next to nothing.
    """

    def __init__(self, checkpointer: "BaseCheckpointer", lease: Lease) -> None:
        self.checkpointer = checkpointer
        self.lease = lease
        self.loop = asyncio.get_running_loop()
        self.interval = checkpointer.lease_seconds / 3
        self.task: asyncio.Task | None = None
        self.timer: asyncio.TimerHandle | None = self.loop.call_later(self.interval, self._due)

    def _due(self) -> None:
        self.task = self.loop.create_task(self._renew())

    async def _renew(self) -> None:
        if await self.checkpointer._renew(self.lease, self.checkpointer.lease_seconds):
            self.timer = self.loop.call_later(self.interval, self._due)
        else:
            self.lease.lost = True

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            self.task.cancel()
