"""Per-node retry policy."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries a failing node.

    ``max_attempts`` counts the first try. Waits ``initial_interval`` seconds,
    multiplied by ``backoff_factor`` after each failure, at most ``max_interval``
    (with up to 50% random ``jitter`` added when set). ``retry_on`` is an
    exception class, a tuple of them, or a predicate ``(exc) -> bool``.
    """

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 30.0
    jitter: bool = False
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool] = Exception

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_interval < 0 or self.backoff_factor < 1 or self.max_interval < 0:
            raise ValueError("intervals must be non-negative and backoff_factor at least 1")

    def should_retry(self, error: BaseException) -> bool:
        rule = self.retry_on
        if isinstance(rule, (type, tuple)):
            return isinstance(error, rule)
        return bool(rule(error))

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after the ``failed_attempt``-th failure."""
        wait = min(self.initial_interval * self.backoff_factor ** (failed_attempt - 1), self.max_interval)
        if self.jitter:
            wait += random.uniform(0, wait / 2)
        return wait
