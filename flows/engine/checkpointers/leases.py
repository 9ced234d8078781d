"""Keeping a held session lease alive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ..errors import CheckpointerUnavailable
from .types import Lease

#: a store's ``renew``: extends a lease by the seconds given; ``False`` once it was taken over
Renew = Callable[[Lease, float], Awaitable[bool]]


class KeepAlive:
    """Renews a lease every third of its length while it is held.

    A timer rather than a task per lease: most runs end before the first
    renewal is due, and a cancelled timer costs next to nothing. A renewal
    that cannot reach the store is retried at the next tick; once the lease
    has surely run out it is marked lost, so the run stops writing.
    """

    def __init__(self, renew: Renew, lease: Lease, lease_seconds: float) -> None:
        self.renew = renew
        self.lease = lease
        self.lease_seconds = lease_seconds
        self.loop = asyncio.get_running_loop()
        self.interval = lease_seconds / 3
        self.task: asyncio.Task[None] | None = None
        self.expires = time.monotonic() + lease_seconds
        self.timer: asyncio.TimerHandle | None = self.loop.call_later(self.interval, self._due)

    def _due(self) -> None:
        self.task = self.loop.create_task(self._renew())

    async def _renew(self) -> None:
        asked = time.monotonic()
        try:
            renewed = await self.renew(self.lease, self.lease_seconds)
        except CheckpointerUnavailable:
            renewed = asked < self.expires  # still ours until it runs out; try again
        else:
            if renewed:
                self.expires = asked + self.lease_seconds
        if renewed:
            self.timer = self.loop.call_later(self.interval, self._due)
        else:
            self.lease.lost = True

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            self.task.cancel()
