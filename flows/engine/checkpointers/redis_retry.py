"""How flows' Redis clients retry a lost connection (the checkpointer's and the event log's).

redis-py retries nothing unless told to: a client built by ``Redis.from_url()``
gets ``Retry(NoBackoff(), 0)``, so a connection the server closed while it was
idle (``timeout`` in redis.conf), or one killed by ``CLIENT KILL``, a proxy or
a failover, fails the next command. :func:`retry_options` gives the keyword
arguments that make a client retry instead:

* on redis-py's ``ConnectionError`` and ``TimeoutError`` (and their subclasses,
  e.g. ``BusyLoadingError``), each command is sent again, on a new connection,
  up to :data:`RETRIES` more times;
* the first retry goes at once (a dropped connection is usually just that
  connection), the next ones after an exponential backoff with jitter of
  50–100 ms, then 100–200 ms (:class:`Backoff`), so workers that all lost the
  server do not come back in step.

redis-py applies the same policy to opening a connection, so a call that finds
the server refusing connections, at its start or after its connection dropped,
gives up after 4 attempts, about 0.2-0.3 s (measured): long enough for a
dropped connection, not to wait out a restart or a failover, which stay
``CheckpointerUnavailable``. A ``TimeoutError`` comes only after
``socket_timeout`` or ``socket_connect_timeout`` (5 s unless the URL says
otherwise), so a server that stops answering is reported after up to
``(RETRIES + 1) × 5 s``.

redis-py counts authentication failures as ``ConnectionError`` too; they are
permanent, so they are not retried (:func:`retryable`): a wrong password is
reported after one attempt. ``health_check_interval``
stays 0 (no PING before reusing an idle connection): the retry covers a dead
idle connection already, one round trip later, and a URL may still set it.

Retrying sends a command a second time when only its reply was lost: whatever
is sent through these clients must be safe to run twice. The checkpointer's
scripts and the event log's append are (see their modules).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import EqualJitterBackoff
from redis.retry import Retry as BlockingRetry

T = TypeVar("T")

#: how many times a command is sent again after its connection failed
RETRIES = 3
#: the backoff of the second retry is 2 × BACKOFF_BASE (halved at random), doubling from there
BACKOFF_BASE = 0.025
#: no wait between two attempts is longer than this
BACKOFF_CAP = 1.0


class Backoff(EqualJitterBackoff):
    """No wait before the first retry; then redis-py's equal-jitter exponential backoff.

    Before retry ``n >= 2`` it waits between half and all of
    ``min(cap, base × 2**n)`` seconds.
    """

    def compute(self, failures: int) -> float:
        return 0.0 if failures <= 1 else super().compute(failures)


def retryable(error: Exception) -> bool:
    """Whether a failed command may be sent again: not when the server refused the credentials."""
    return not isinstance(error, (redis_errors.AuthenticationError, redis_errors.AuthorizationError))


def _also_retryable(is_retryable: Callable[[Exception], bool] | None) -> Callable[[Exception], bool]:
    return lambda error: retryable(error) and (is_retryable is None or is_retryable(error))


class _Retry(AsyncRetry):
    """redis-py's asyncio ``Retry``, refusing what :func:`retryable` refuses."""

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        return await super().call_with_retry(do, fail, _also_retryable(is_retryable), with_failure_count)


class _BlockingRetry(BlockingRetry):
    """redis-py's ``Retry`` (for ``redis.Redis``), refusing what :func:`retryable` refuses."""

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        return super().call_with_retry(do, fail, _also_retryable(is_retryable), with_failure_count)


def retry_options(*, blocking: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``Redis.from_url()``: the retry policy described above.

    ``blocking=True`` for ``redis.Redis`` (its ``Retry`` class is not the asyncio
    client's). Options in the URL's query (``socket_timeout``...) still apply.
    """
    backoff = Backoff(cap=BACKOFF_CAP, base=BACKOFF_BASE)
    retry = _BlockingRetry(backoff, RETRIES) if blocking else _Retry(backoff, RETRIES)
    return {"retry": retry, "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError]}
