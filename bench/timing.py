"""Small timing helpers: every figure the benchmark prints is a median of batch means."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def batch_mean(call: Callable[[int], Awaitable[object]], start: int, count: int) -> float:
    """µs per call over ``count`` calls ``call(start)``, ``call(start + 1)``, …"""
    began = time.perf_counter()
    for i in range(start, start + count):
        await call(i)
    return (time.perf_counter() - began) / count * 1e6


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    """µs for one call."""
    began = time.perf_counter()
    await call()
    return (time.perf_counter() - began) * 1e6


async def calibrate(
    call: Callable[[int], Awaitable[object]],
    seconds: float,
    low: int = 3,
    high: int = 2000,
) -> int:
    """How many calls make a batch of about ``seconds`` (also warms ``call`` up)."""
    per_call = await batch_mean(call, 0, low)
    return max(low, min(high, math.ceil(seconds * 1e6 / per_call)))
