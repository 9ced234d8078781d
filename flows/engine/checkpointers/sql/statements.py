"""Every statement the store runs, built once per checkpointer.

SQLAlchemy caches the compiled form of a construct by its structure, so
building constructs once and reusing them makes each execution a cache hit
(and, with asyncpg, a reuse of the server-side prepared statement). Statements
whose shape depends on a count (fields read, ranges deleted) are built per
count, rounded up to a power of two so only a handful of shapes ever exist.

Times come from the database's clock (:data:`NOW`), so leases and TTLs agree
across hosts whatever their clocks say. SQLite's clock is the host's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Delete,
    Double,
    Insert,
    Integer,
    ScalarSelect,
    Select,
    Table,
    TextClause,
    Update,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..types import CHUNK
from .schema import Tables

NOW = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
    "mysql": "UNIX_TIMESTAMP(NOW(6))",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


#: PostgreSQL: evaluated inside a statement, makes the statement's transaction
#: commit without waiting for its WAL flush (``SET LOCAL synchronous_commit TO
#: OFF`` without a round trip of its own). Only for commits whose loss in a
#: crash costs nothing but time (docs/backends/sql.md, "Durability"): a later
#: synchronous commit flushes the WAL up to itself, so nothing durable ever
#: depends on a lost lazy commit, and the transaction stays atomic.
LAZY_COMMIT = "set_config('synchronous_commit', 'off', true)"


def padded(count: int) -> int:
    """``count`` rounded up to a power of two (at least 1)."""
    size = 1
    while size < count:
        size *= 2
    return size


class Statements:
    """The store's statements for one table set on one database family."""

    def __init__(self, tables: Tables, family: str, ttl_seconds: float | None) -> None:
        self.tables = tables
        self.family = family
        self.ttl_seconds = ttl_seconds
        s, c, w = tables.sessions, tables.checkpoints, tables.writes
        now = literal_column(NOW[family], Double)
        sid: BindParameter[str] = bindparam("sid")
        token = bindparam("token", type_=BigInteger)
        lease_seconds = bindparam("ls", type_=Double)
        held = and_(s.c.session_id == sid, s.c.lease_token == token, s.c.lease_until.is_not(None))

        if ttl_seconds is None:
            self.live: ColumnElement[bool] | None = None
            self.expired: ColumnElement[bool] | None = None
        else:
            ttl = bindparam("ttl", ttl_seconds, type_=Double)
            fresh = or_(s.c.updated_at >= now - ttl, and_(s.c.lease_until.is_not(None), s.c.lease_until >= now))
            self.live = exists().where(s.c.session_id == sid, fresh)
            self.expired = and_(
                s.c.updated_at < now - ttl, or_(s.c.lease_until.is_(None), s.c.lease_until < now)
            )

        # -- leases
        self.acquire_update = (
            update(s)
            .where(s.c.session_id == sid, or_(s.c.lease_until.is_(None), s.c.lease_until < now))
            .values(lease_token=s.c.lease_token + 1, lease_until=now + lease_seconds)
        )
        self.acquire_take_over = (  # even a held lease: its holder's next write is refused
            update(s)
            .where(s.c.session_id == sid)
            .values(lease_token=s.c.lease_token + 1, lease_until=now + lease_seconds)
        )
        self.acquire_insert = self._insert_ignore(
            s,
            session_id=sid,
            head_seq=None,
            head_id=None,
            last_seq=0,
            # A new row's first token is the database clock in microseconds:
            # above every token an earlier row of the same id handed out
            # (those started lower and grew by one per lease).
            lease_token=cast(now * 1_000_000, BigInteger),
            lease_until=now + lease_seconds,
            updated_at=now,
        )
        self.acquire_read = (
            select(
                s.c.lease_token,
                s.c.last_seq,
                s.c.updated_at,
                now.label("db_now"),
                c.c.seq,
                c.c.checkpoint_id,
                c.c.parent_id,
                c.c.created_at,
                c.c.run_id,
                c.c.node,
                c.c.blob,
            )
            .select_from(s.outerjoin(c, and_(c.c.session_id == s.c.session_id, c.c.seq == s.c.head_seq)))
            .where(s.c.session_id == sid)
        )
        self.reset_session = (
            update(s).where(s.c.session_id == sid).values(head_seq=None, head_id=None, last_seq=0, updated_at=now)
        )
        self.renew = update(s).where(held).values(lease_until=now + lease_seconds)
        self.release_empty = delete(s).where(s.c.session_id == sid, s.c.lease_token == token, s.c.head_seq.is_(None))
        self.release = (
            update(s).where(s.c.session_id == sid, s.c.lease_token == token).values(lease_until=None)
        )
        #: PostgreSQL: both halves of the release in one statement (disjoint on
        #: ``head_seq``, so exactly one applies), committed lazily (:data:`LAZY_COMMIT`).
        self.release_lazy: Update | None = None
        if family == "postgresql":
            lazy = literal_column(LAZY_COMMIT).is_not(None)
            mine = (s.c.session_id == sid, s.c.lease_token == token)
            gone = delete(s).where(*mine, s.c.head_seq.is_(None), lazy).returning(s.c.session_id).cte("gone")
            self.release_lazy = (
                update(s).where(*mine, s.c.head_seq.is_not(None), lazy).values(lease_until=None).add_cte(gone)
            )

        # -- writing
        self.fence_write = (
            update(s)
            .where(held)
            .values(head_seq=bindparam("seq"), head_id=bindparam("cid"), last_seq=bindparam("seq"), updated_at=now)
        )
        self.fence_head = (
            update(s).where(held).values(head_seq=bindparam("seq"), head_id=bindparam("cid"), updated_at=now)
        )
        #: ``fence_head`` for a transaction that may commit lazily (a compaction):
        #: on PostgreSQL it turns ``synchronous_commit`` off for its transaction.
        self.fence_head_lazy = (
            self.fence_head.where(literal_column(LAZY_COMMIT).is_not(None))
            if family == "postgresql" else self.fence_head
        )
        self.insert_checkpoint = insert(c)
        self.insert_writes = insert(w)
        self.write_cte = self._write_cte() if family == "postgresql" else None

        # -- reading
        columns = (c.c.seq, c.c.checkpoint_id, c.c.parent_id, c.c.created_at, c.c.run_id, c.c.node, c.c.blob)
        self.read_head = self._live(
            select(*columns)
            .select_from(s.join(c, and_(c.c.session_id == s.c.session_id, c.c.seq == s.c.head_seq)))
            .where(s.c.session_id == sid)
        )
        self.read_checkpoint = self._live(
            select(*columns).where(c.c.session_id == sid, c.c.checkpoint_id == bindparam("cid"))
        )
        self.read_from = self._live(
            select(*columns).where(c.c.session_id == sid, c.c.seq >= bindparam("seq")).order_by(c.c.seq)
        )
        self.count = self._live(select(func.count()).select_from(c).where(c.c.session_id == sid))
        self.read_chain = self._chain(columns)
        self._read_writes: dict[int, CompoundSelect[Any]] = {}

        # -- deleting
        self.delete_session = delete(s).where(held)
        self.purge_checkpoints = delete(c).where(c.c.session_id == sid)
        self.purge_writes = delete(w).where(w.c.session_id == sid)
        self.delete_expired = delete(s).where(s.c.session_id == sid, self.expired) if self.expired is not None else None
        self.list_expired = (
            select(s.c.session_id).where(self.expired).limit(1000) if self.expired is not None else None
        )
        self.delete_ids = delete(c).where(
            c.c.session_id == sid, c.c.checkpoint_id.in_(bindparam("ids", expanding=True))
        )
        self.list_seqs = select(c.c.seq, c.c.checkpoint_id).where(c.c.session_id == sid)
        self.session_ids = select(s.c.session_id).where(s.c.head_seq.is_not(None)).order_by(s.c.session_id)

        # -- stats
        def blob_bytes(table: Table) -> ScalarSelect[Any]:
            return select(func.coalesce(func.sum(func.length(table.c.blob)), 0)).scalar_subquery()

        self.stats = select(
            select(func.count()).select_from(s).scalar_subquery().label("sessions"),
            select(func.count()).select_from(c).scalar_subquery().label("checkpoints"),
            select(func.count()).select_from(w).scalar_subquery().label("writes"),
            (blob_bytes(w) + blob_bytes(c)).label("bytes"),
        )

    # ------------------------------------------------------------------ builders

    def _live(self, query: Select[Any]) -> Select[Any]:
        """Restricts a read to a session that exists and has not expired."""
        return query if self.live is None else query.where(self.live)

    def _insert_ignore(self, table: Any, **values: Any) -> Insert:
        if self.family == "postgresql":
            return postgresql.insert(table).values(**values).on_conflict_do_nothing()
        if self.family == "sqlite":
            return sqlite.insert(table).values(**values).on_conflict_do_nothing()
        return insert(table).values(**values).prefix_with("IGNORE")

    def _chain(self, columns: Sequence[Any]) -> Select[Any]:
        """A checkpoint's ancestors, nearest first: one recursive query, O(limit) rows."""
        c = self.tables.checkpoints
        sid: BindParameter[str] = bindparam("sid")
        one = literal_column("1", Integer)
        chain = (
            select(c.c.seq, c.c.parent_id, one.label("depth"))
            .where(c.c.session_id == sid, c.c.checkpoint_id == bindparam("start"))
            .cte("chain", recursive=True)
        )
        step = (
            select(c.c.seq, c.c.parent_id, (chain.c.depth + one).label("depth"))
            .select_from(c.join(chain, c.c.checkpoint_id == chain.c.parent_id))
            .where(c.c.session_id == sid, chain.c.depth < bindparam("limit", type_=Integer))
        )
        chain = chain.union_all(step)
        return self._live(
            select(*columns)
            .select_from(c.join(chain, c.c.seq == chain.c.seq))
            .where(c.c.session_id == sid)
            .order_by(chain.c.depth)
        )

    def read_writes(self, count: int) -> CompoundSelect[Any]:
        """The writes of ``count`` fields, each within its own seq range (and the chunk
        covering its start), in one query.

        One ``SELECT`` per range, joined by ``UNION ALL``: each is one range of
        the primary key whatever the planner knows. As one ``OR`` of the ranges,
        SQLite scanned all the session's writes, and PostgreSQL did until its
        statistics caught up, so a turn's read grew with the history.
        """
        size = padded(count)
        query = self._read_writes.get(size)
        if query is None:
            w = self.tables.writes
            columns = (w.c.seq, w.c.field, w.c.op, w.c.blob)
            sid = w.c.session_id == bindparam("sid")
            ranges = [
                and_(sid, w.c.field == bindparam(f"f{i}"), w.c.seq >= bindparam(f"lo{i}", type_=BigInteger),
                     w.c.seq <= bindparam(f"hi{i}", type_=BigInteger))
                for i in range(size)
            ] + [  # the chunk that may cover lo, begun earlier in its window
                and_(sid, w.c.field == bindparam(f"f{i}"), w.c.seq >= bindparam(f"w{i}", type_=BigInteger),
                     w.c.seq < bindparam(f"lo{i}", type_=BigInteger), w.c.op == CHUNK)
                for i in range(size)
            ]
            parts = [self._live(select(*columns).where(where)) for where in ranges]
            query = union_all(*parts).order_by(literal_column("field"), literal_column("seq"))
            self._read_writes[size] = query
        return query

    def delete_ranges(self, table: Any, ranges: Sequence[tuple[str | None, int, int]]) -> Delete:
        """Deletes the session's rows of ``table`` in the given (field, lo, hi) ranges."""
        conditions = []
        for name, lo, hi in ranges:
            span = and_(table.c.seq >= lo, table.c.seq <= hi)
            conditions.append(span if name is None else and_(table.c.field == name, span))
        return delete(table).where(table.c.session_id == bindparam("sid"), or_(*conditions))

    def _write_cte(self) -> TextClause:
        """PostgreSQL: fence, head move, record and writes in ONE statement.

        The inserts select from the fencing UPDATE's result, so a stale token
        inserts nothing; the statement is one round trip and, being a single
        statement, atomic. The writes arrive as three arrays, so the statement
        is the same whatever their number (one prepared statement).
        """
        from sqlalchemy.dialects.postgresql.base import PGDialect

        dialect = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves PGDialect.__init__ unannotated
        quote = dialect.identifier_preparer.format_table
        s, c, w = (quote(t) for t in (self.tables.sessions, self.tables.checkpoints, self.tables.writes))
        return text(
            f"""
            WITH s AS (
                UPDATE {s} SET head_seq = CAST(:seq AS BIGINT), head_id = CAST(:cid AS VARCHAR),
                    last_seq = CAST(:seq AS BIGINT), updated_at = {NOW['postgresql']}
                WHERE session_id = CAST(:sid AS VARCHAR) AND lease_token = CAST(:token AS BIGINT)
                    AND lease_until IS NOT NULL
                RETURNING session_id
            ), c AS (
                INSERT INTO {c} (session_id, seq, checkpoint_id, parent_id, created_at, run_id, node, blob)
                SELECT session_id, CAST(:seq AS BIGINT), CAST(:cid AS VARCHAR), CAST(:parent AS VARCHAR),
                    CAST(:created AS DOUBLE PRECISION), CAST(:run AS TEXT), CAST(:node AS TEXT),
                    CAST(:blob AS BYTEA)
                FROM s
            ), w AS (
                INSERT INTO {w} (session_id, field, seq, op, blob)
                SELECT s.session_id, u.field, CAST(:seq AS BIGINT), u.op, u.blob
                FROM s, unnest(CAST(:fields AS VARCHAR[]), CAST(:ops AS VARCHAR[]), CAST(:blobs AS BYTEA[]))
                    AS u(field, op, blob)
            )
            SELECT count(*) FROM s
            """
        )
