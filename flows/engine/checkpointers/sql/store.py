"""SQLCheckpointer: checkpoints in PostgreSQL, MySQL/MariaDB or SQLite.

:class:`SQLStore` is the :class:`~..store.Store` of those databases: lease and
retention primitives as functions of a connection run by :class:`Database`
(in a worker thread for sync drivers, on the loop for async ones), reads as
compiled statements (:meth:`Database.fetch`), and the checkpoint save through
the database family's writer (:mod:`.writers`). Semantics mirror
:class:`InMemoryCheckpointer` exactly; see docs/backends/sql.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, func, insert

from ..checkpointer import Checkpointer
from ..delta import window_start
from ..retention import runs
from ..store import WriteRange, field_batches, lease_lost
from ..types import Lease, LeaseGrant, StoredCheckpoint, StoredWrite
from . import scripts
from .database import Database
from .schema import build_tables, create_tables
from .scripts import stored_checkpoint
from .statements import Statements, padded
from .writers import make_saver

#: Ranges per DELETE statement, and ids per IN list: well under every
#: driver's parameter limit.
_BATCH = 256
#: The recursive chain query's depth column is an INTEGER.
_MAX_LIMIT = 2**31 - 1


class SQLStore:
    """Sessions in the three tables ``{table_prefix}sessions``, ``…checkpoints`` and ``…writes``."""

    def __init__(
        self,
        connection_string: str,
        echo: bool = False,
        *,
        table_prefix: str = "flows_",
        pool_size: int = 10,
        max_overflow: int = 10,
        ttl_seconds: float | None = None,
        connect_args: dict[str, Any] | None = None,
        engine_options: dict[str, Any] | None = None,
        sqlite_synchronous: str = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.db = Database(
            connection_string,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            busy_timeout=busy_timeout,
            connect_args=connect_args,
            engine_options=engine_options,
            sqlite_synchronous=sqlite_synchronous,
        )
        self.tables = build_tables(table_prefix)
        self.sql = Statements(self.tables, self.db.family, ttl_seconds)
        self._save = make_saver(self.db, self.sql)
        family = self.db.family
        self.db.prepare = lambda conn: self._create_tables(conn, family)

    def __repr__(self) -> str:
        return f"<SQLStore {self.db.safe_url} prefix={self.tables.prefix!r}>"

    async def aclose(self) -> None:
        """Closes the connection pools; the checkpointer reconnects if used again."""
        await self.db.aclose()

    def _create_tables(self, conn: Connection, family: str) -> None:
        with self.db.transaction(conn, write=True):
            create_tables(conn, self.tables, family)

    # ------------------------------------------------------------------ leases

    async def try_acquire(self, session_id: str, lease_seconds: float, take_over: bool = False) -> LeaseGrant | None:
        with_ttl = self.ttl_seconds is not None
        return await self.db.script(lambda: scripts.acquire(self.sql, session_id, lease_seconds, take_over),
                                    transaction=with_ttl)

    async def renew(self, lease: Lease, lease_seconds: float) -> bool:
        return await self.db.script(lambda: scripts.renew(self.sql, lease.session_id, lease.token, lease_seconds))

    async def release(self, lease: Lease) -> None:
        await self.db.script(lambda: scripts.release(self.sql, lease.session_id, lease.token))

    # ------------------------------------------------------------------ writing

    async def write(self, lease: Lease, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> None:
        if not await self._save(lease.token, record, writes):
            raise lease_lost(lease)

    # ------------------------------------------------------------------ reading

    async def read_head(self, session_id: str) -> StoredCheckpoint | None:
        rows = await self.db.fetch(self.sql.read_head, {"sid": session_id})
        return stored_checkpoint(session_id, rows[0]) if rows else None

    async def read_checkpoint(self, session_id: str, checkpoint_id: str) -> StoredCheckpoint | None:
        rows = await self.db.fetch(self.sql.read_checkpoint, {"sid": session_id, "cid": checkpoint_id})
        return stored_checkpoint(session_id, rows[0]) if rows else None

    async def read_writes(self, session_id: str, ranges: Mapping[str, tuple[int, int]]) -> list[StoredWrite]:
        found: list[StoredWrite] = []
        for batch in field_batches(ranges):
            found += await self._read_writes(session_id, batch)
        return found

    async def _read_writes(self, session_id: str, items: list[tuple[str, tuple[int, int]]]) -> list[StoredWrite]:
        size = padded(len(items))
        params: dict[str, Any] = {"sid": session_id}
        for i, (name, (lo, hi)) in enumerate(items):
            params[f"f{i}"], params[f"lo{i}"], params[f"hi{i}"], params[f"w{i}"] = name, lo, hi, window_start(lo)
        for i in range(len(items), size):  # pads name no field (``field = NULL`` matches no row)
            params[f"f{i}"], params[f"lo{i}"], params[f"hi{i}"], params[f"w{i}"] = None, 0, 0, 0
        rows = await self.db.fetch(self.sql.read_writes(size), params)
        return [StoredWrite(int(seq), name, op, bytes(blob)) for seq, name, op, blob in rows]

    async def read_chain(self, session_id: str, start: StoredCheckpoint, limit: int) -> list[StoredCheckpoint]:
        if limit < 1:
            return []
        if limit == 1 or start.parent_id is None:
            return [start]
        params = {"sid": session_id, "start": start.parent_id, "limit": min(limit - 1, _MAX_LIMIT)}
        rows = await self.db.fetch(self.sql.read_chain, params)
        return [start, *(stored_checkpoint(session_id, row) for row in rows)]

    async def read_records_from(self, session_id: str, min_seq: int) -> list[StoredCheckpoint]:
        rows = await self.db.fetch(self.sql.read_from, {"sid": session_id, "seq": min_seq})
        return [stored_checkpoint(session_id, row) for row in rows]

    async def count(self, session_id: str) -> int:
        rows = await self.db.fetch(self.sql.count, {"sid": session_id})
        return int(rows[0][0])

    # ------------------------------------------------------------------ deleting

    async def delete_ids(
        self,
        lease: Lease,
        ids: Iterable[str],
        *,
        drop_writes: Iterable[WriteRange],
        head: StoredCheckpoint,
        add_writes: Sequence[StoredWrite] = (),
    ) -> None:
        doomed = sorted(ids)
        adding, added = self._insert_writes(lease.session_id, add_writes)

        def change(conn: Connection) -> None:
            for start in range(0, len(doomed), _BATCH):
                conn.execute(self.sql.delete_ids, {"sid": lease.session_id, "ids": doomed[start : start + _BATCH]})
            self._delete_ranges(conn, self.tables.writes, lease.session_id, list(drop_writes))
            if added:
                conn.execute(adding, added)

        # Without ids it is a compaction (same state, fewer rows): committed lazily.
        await self._fenced(lease, head, change, lazy=not doomed)

    async def keep_only(
        self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange], head: StoredCheckpoint
    ) -> None:
        kept, sid = set(ids), lease.session_id

        def change(conn: Connection) -> None:
            seqs = [seq for seq, cid in conn.execute(self.sql.list_seqs, {"sid": sid}) if cid not in kept]
            spans: list[WriteRange] = [(None, lo, hi) for lo, hi in runs(sorted(seqs))]
            self._delete_ranges(conn, self.tables.checkpoints, sid, spans)
            self._delete_ranges(conn, self.tables.writes, sid, list(drop_writes))

        await self._fenced(lease, head, change)

    async def _fenced(
        self, lease: Lease, head: StoredCheckpoint, change: Callable[[Connection], None], *, lazy: bool = False
    ) -> None:
        """Runs ``change`` in one transaction that first points the head at ``head`` under ``lease``
        (``lazy``: one whose commit need not wait for the disk, see :data:`.statements.LAZY_COMMIT`)."""
        fence = {"sid": lease.session_id, "token": lease.token, "seq": head.seq, "cid": head.checkpoint_id}
        fence_head = self.sql.fence_head_lazy if lazy else self.sql.fence_head

        def work(conn: Connection) -> None:
            with self.db.transaction(conn, write=True):
                if conn.execute(fence_head, fence).rowcount != 1:
                    raise lease_lost(lease)
                change(conn)

        await self.db.run(work)

    def _insert_writes(self, session_id: str, writes: Sequence[StoredWrite]) -> tuple[Insert, list[dict[str, Any]]]:
        """An INSERT of ``writes`` and its rows (blobs as hex where the driver cannot send bytes)."""
        rows: list[dict[str, Any]] = [
            {"session_id": session_id, "field": w.field, "seq": w.seq, "op": w.op, "blob": w.blob} for w in writes
        ]
        statement = insert(self.tables.writes)
        if self.db.needs_hex_blobs:
            statement = statement.values(blob=func.unhex(bindparam("hex")))
            for row in rows:
                row["hex"] = row.pop("blob").hex()
        return statement, rows

    def _delete_ranges(
        self, conn: Connection, table: Any, session_id: str, ranges: Sequence[tuple[str | None, int, int]]
    ) -> None:
        for start in range(0, len(ranges), _BATCH):
            conn.execute(self.sql.delete_ranges(table, ranges[start : start + _BATCH]), {"sid": session_id})

    async def delete_session(self, lease: Lease) -> None:
        params = {"sid": lease.session_id, "token": lease.token}

        def work(conn: Connection) -> None:
            with self.db.transaction(conn, write=True):
                if conn.execute(self.sql.delete_session, params).rowcount != 1:
                    raise lease_lost(lease)
                conn.execute(self.sql.purge_writes, params)
                conn.execute(self.sql.purge_checkpoints, params)

        await self.db.run(work)

    # ------------------------------------------------------------------ sessions

    def _purge_expired(self, conn: Connection) -> None:
        """Deletes every expired session whole (rechecked under the write lock)."""
        sql = self.sql
        if sql.list_expired is None or sql.delete_expired is None:
            return
        while True:
            candidates: list[str] = list(conn.execute(sql.list_expired).scalars())
            if not candidates:
                return
            with self.db.transaction(conn, write=True):
                for session_id in candidates:
                    params = {"sid": session_id}
                    if conn.execute(sql.delete_expired, params).rowcount:
                        conn.execute(sql.purge_writes, params)
                        conn.execute(sql.purge_checkpoints, params)
            if len(candidates) < 1000:
                return

    async def session_ids(self) -> list[str]:
        def work(conn: Connection) -> list[str]:
            self._purge_expired(conn)
            return list(conn.execute(self.sql.session_ids).scalars())

        return await self.db.run(work)

    async def stats(self) -> dict[str, int]:
        def work(conn: Connection) -> dict[str, int]:
            self._purge_expired(conn)
            row = conn.execute(self.sql.stats).one()
            return {key: int(value) for key, value in row._mapping.items()}

        return await self.db.run(work)


class SQLCheckpointer(Checkpointer):
    """Checkpoints in a SQL database through SQLAlchemy 2 Core (an :class:`SQLStore`).

    ``connection_string`` is any SQLAlchemy URL of PostgreSQL (``psycopg2``,
    ``asyncpg``), MySQL/MariaDB (``pymysql``, ``aiomysql``) or SQLite (built-in
    ``sqlite3``, ``aiosqlite``). Tables named ``{table_prefix}sessions``,
    ``…checkpoints`` and ``…writes`` are created on first use. ``pool_size`` and
    ``max_overflow`` size the connection pool (one per event loop for async
    drivers); ``connect_args`` and ``engine_options`` go to SQLAlchemy as is.
    ``sqlite_synchronous`` is SQLite's ``PRAGMA synchronous`` (``NORMAL``: no
    fsync per commit in WAL mode; ``FULL``: one).
    Every :class:`Checkpointer` option is accepted.
    """

    store: SQLStore

    def __init__(
        self,
        connection_string: str,
        echo: bool = False,
        *,
        table_prefix: str = "flows_",
        pool_size: int = 10,
        max_overflow: int = 10,
        max_checkpoints_per_session: int | None = None,
        ttl_seconds: float | None = None,
        connect_args: dict[str, Any] | None = None,
        engine_options: dict[str, Any] | None = None,
        sqlite_synchronous: str = "NORMAL",
        **options: Any,
    ) -> None:
        store = SQLStore(
            connection_string,
            echo,
            table_prefix=table_prefix,
            pool_size=pool_size,
            max_overflow=max_overflow,
            ttl_seconds=ttl_seconds,
            connect_args=connect_args,
            engine_options=engine_options,
            sqlite_synchronous=sqlite_synchronous,
            busy_timeout=options.get("busy_timeout", 30.0),
        )
        super().__init__(
            store, max_checkpoints_per_session=max_checkpoints_per_session, ttl_seconds=ttl_seconds, **options
        )
        self.db, self.tables = store.db, store.tables

    def __repr__(self) -> str:
        return f"<SQLCheckpointer {self.db.safe_url} prefix={self.tables.prefix!r}>"
