"""``DjangoCheckpointer``: checkpoints in the site's database, through the ORM.

The shared logic (deltas, codecs, leases, retention) is the engine's
``Checkpointer``; :class:`DjangoStore` is its ``Store``: it runs the queries of
``flows.store`` off the event loop.

Threads: the ORM blocks, so every primitive runs on a small thread pool owned
by flows (``sync_to_async(thread_sensitive=False, executor=...)``). The
alternative, ``thread_sensitive=True``, would funnel all ORM work of a plain
asyncio process (a worker, a WebSocket consumer's task, the engine's own
background loop for sync callers) through asgiref's single shared thread, so
one session waiting on the database would stall every other session. Pool
threads keep their connection between calls like a request's thread does:
``CONN_MAX_AGE`` and ``CONN_HEALTH_CHECKS`` are honoured around each call,
exactly as Django does around each request.

Because the pool uses its own connections, a flow's checkpoints are committed
independently of the caller's transaction (like a cache or a task queue): do
not run flows inside ``transaction.atomic()`` that also holds the session's
rows, and test flows with ``TransactionTestCase`` / ``transactional_db``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import connections, models

from flows.engine.checkpointers import Checkpointer, Lease, LeaseGrant, StoredCheckpoint, StoredWrite, WriteRange

T = TypeVar("T")
#: a storage model, its ``"app_label.ModelName"``, or ``None`` for flows' own
ModelRef = type[models.Model] | str | None

#: Threads in the shared ORM pool: the most database connections flows holds per process.
DEFAULT_THREADS = 8

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def shared_executor() -> ThreadPoolExecutor:
    """The process-wide pool every ``DjangoCheckpointer`` uses unless given its own."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=DEFAULT_THREADS, thread_name_prefix="flows-orm")
        return _pool


def close_pool() -> None:
    """Ends the shared pool's threads, which closes their database connections; the next use starts a new pool.

    For test runners: the test databases cannot be dropped while these
    connections are open (pytest-django warns "is being accessed by other users").
    """
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
    for connection in list(_pool_connections):
        connection.inc_thread_sharing()  # its thread has ended: closing it from here is safe
        try:
            connection.close()
        finally:
            connection.dec_thread_sharing()
    _pool_connections.clear()


#: A pool thread's connection idle this long is checked again before its next use (as a request's is).
CHECK_AFTER_IDLE_SECONDS = 1.0
_last_use = threading.local()
#: the connections pool threads opened, for :func:`close_pool`
_pool_connections: weakref.WeakSet = weakref.WeakSet()


def _with_connection_hygiene(using: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs ``func`` with Django's request-style connection handling around it.

    Django checks a connection at the start of each request (``CONN_MAX_AGE``,
    and with ``CONN_HEALTH_CHECKS`` a ``SELECT 1``). A pool thread serves many
    calls a second, so it does so when its connection was idle for
    ``CHECK_AFTER_IDLE_SECONDS`` — not before every call, which would add a round trip to
    every checkpoint write — and at once after an error.
    """
    connection = connections[using]
    uses = getattr(_last_use, "by_alias", None)
    if uses is None:
        uses = _last_use.by_alias = {}
    if using not in uses:
        _pool_connections.add(connection)
    now = time.monotonic()
    if now - uses.get(using, -CHECK_AFTER_IDLE_SECONDS) >= CHECK_AFTER_IDLE_SECONDS or connection.errors_occurred:
        connection.close_if_unusable_or_obsolete()
    try:
        return func(*args, **kwargs)
    finally:
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()
        uses[using] = time.monotonic()


async def run_in_orm_thread(
    func: Callable[..., T],
    *args: Any,
    using: str = "default",
    executor: ThreadPoolExecutor | None = None,
    **kwargs: Any,
) -> T:
    """Awaits blocking ORM code ``func`` on the flows thread pool (see the module docstring)."""
    call = sync_to_async(_with_connection_hygiene, thread_sensitive=False, executor=executor or shared_executor())
    return await call(using, func, *args, **kwargs)


class DjangoStore:
    """The ``Store`` of ``flow_name``'s sessions in the ``using`` database: ``flows.store``'s
    queries, each run on the flows thread pool (see the module docstring)."""

    def __init__(
        self,
        flow_name: str,
        using: str,
        ttl_seconds: float | None,
        models: tuple[ModelRef, ModelRef, ModelRef],
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.flow_name = flow_name
        self.using = using
        self.ttl_seconds = ttl_seconds
        self._models = models
        self._orm: Any = None
        self._executor = executor
        # the session row behind each held lease, so writes need no lookup
        self._session_pks: dict[tuple[str, int], int] = {}

    @property
    def orm(self):
        """The ORM queries (built on first use: the models need the app registry)."""
        if self._orm is None:
            from .store import OrmStore

            session_model, checkpoint_model, write_model = (
                apps.get_model(model) if isinstance(model, str) else model for model in self._models
            )
            if None in (session_model, checkpoint_model, write_model):
                from .models import Checkpoint, CheckpointWrite, FlowSession

                session_model = session_model or FlowSession
                checkpoint_model = checkpoint_model or Checkpoint
                write_model = write_model or CheckpointWrite
            self._orm = OrmStore(
                self.flow_name,
                self.using,
                ttl_seconds=self.ttl_seconds,
                session_model=session_model,
                checkpoint_model=checkpoint_model,
                write_model=write_model,
            )
        return self._orm

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_orm_thread(func, *args, using=self.using, executor=self._executor, **kwargs)

    async def _session_pk(self, lease: Lease) -> int:
        pk = self._session_pks.get((lease.session_id, lease.token))
        if pk is None:
            pk = await self._run(self.orm.session_pk, lease.session_id)
        return -1 if pk is None else pk  # a vanished row: the fenced update then fails

    # ------------------------------------------------------------------ the Store protocol

    async def try_acquire(self, session_id: str, lease_seconds: float, take_over: bool = False) -> LeaseGrant | None:
        taken = await self._run(self.orm.try_acquire, session_id, lease_seconds, take_over)
        if taken is None:
            return None
        grant, pk = taken
        self._session_pks[(session_id, grant.token)] = pk
        return grant

    async def renew(self, lease: Lease, lease_seconds: float) -> bool:
        return await self._run(self.orm.renew, await self._session_pk(lease), lease.token, lease_seconds)

    async def release(self, lease: Lease) -> None:
        pk = await self._session_pk(lease)
        self._session_pks.pop((lease.session_id, lease.token), None)
        await self._run(self.orm.release, pk, lease.token)

    async def write(self, lease: Lease, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> None:
        await self._run(self.orm.write, await self._session_pk(lease), lease.token, record, writes, record.status)

    async def delete_ids(self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange],
                         head: StoredCheckpoint, add_writes: Sequence[StoredWrite] = ()) -> None:
        pk = await self._session_pk(lease)
        await self._run(self.orm.delete_ids, pk, lease.token, set(ids), list(drop_writes), head, add_writes)

    async def keep_only(
        self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange], head: StoredCheckpoint
    ) -> None:
        pk = await self._session_pk(lease)
        await self._run(self.orm.keep_only, pk, lease.token, set(ids), list(drop_writes), head)

    async def delete_session(self, lease: Lease) -> None:
        pk = await self._session_pk(lease)
        await self._run(self.orm.delete_session, pk, lease.token)

    async def read_head(self, session_id: str) -> StoredCheckpoint | None:
        return await self._run(self.orm.read_head, session_id)

    async def read_checkpoint(self, session_id: str, checkpoint_id: str) -> StoredCheckpoint | None:
        return await self._run(self.orm.read_checkpoint, session_id, checkpoint_id)

    async def read_writes(self, session_id: str, ranges: Mapping[str, tuple[int, int]]) -> list[StoredWrite]:
        return await self._run(self.orm.read_writes, session_id, ranges)

    async def read_chain(self, session_id: str, start: StoredCheckpoint, limit: int) -> list[StoredCheckpoint]:
        return await self._run(self.orm.read_chain, session_id, start, limit)

    async def read_records_from(self, session_id: str, min_seq: int) -> list[StoredCheckpoint]:
        return await self._run(self.orm.read_records_from, session_id, min_seq)

    async def count(self, session_id: str) -> int:
        return await self._run(self.orm.count, session_id)

    async def session_ids(self) -> list[str]:
        return await self._run(self.orm.session_ids)

    async def stats(self) -> dict[str, int]:
        return await self._run(self.orm.stats)


class DjangoCheckpointer(Checkpointer):
    """Checkpoints of one flow (``flow_name``) in the ``using`` database (a :class:`DjangoStore`).

    Sessions are ``FlowSession`` rows keyed by ``(flow_name, session_id)``; a
    row's ``status`` follows its head checkpoint (running, interrupted, idle).
    Accepts every ``Checkpointer`` option. ``session_model``,
    ``checkpoint_model`` and ``write_model`` (classes or ``"app_label.Model"``)
    swap in a site's own tables (subclasses of ``flows.base_models``);
    ``executor`` replaces the shared thread pool.
    """

    store: DjangoStore

    def __init__(
        self,
        flow_name: str = "default",
        using: str = "default",
        max_checkpoints_per_session: int | None = None,
        ttl_seconds: float | None = None,
        *,
        session_model: ModelRef = None,
        checkpoint_model: ModelRef = None,
        write_model: ModelRef = None,
        executor: ThreadPoolExecutor | None = None,
        **options: Any,
    ) -> None:
        if not flow_name or len(flow_name) > 100:
            raise ValueError("flow_name must be 1-100 characters")
        store = DjangoStore(flow_name, using, ttl_seconds, (session_model, checkpoint_model, write_model), executor)
        super().__init__(
            store, max_checkpoints_per_session=max_checkpoints_per_session, ttl_seconds=ttl_seconds, **options
        )
        self.flow_name = flow_name
        self.using = using

    def __repr__(self) -> str:
        return f"<DjangoCheckpointer flow={self.flow_name!r} using={self.using!r}>"
