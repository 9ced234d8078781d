"""The ORM side of ``DjangoCheckpointer``: blocking queries, one method per store primitive.

Everything here is synchronous and runs on a worker thread (see
``flows.checkpointer``). Each method is a constant number of queries; every
mutation is one transaction that starts with the fencing ``UPDATE`` of the
session row, so a stale lease holder changes nothing (``LeaseLost``) and
concurrent writers to one session serialise on that row. Lease expiry and
session TTLs use the database's clock (``Now()``), so hosts with skewed
clocks agree on who holds a session.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, models, transaction
from django.db.models import BooleanField, DateTimeField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Length, Now

from flows.engine.checkpointers.delta import window_start
from flows.engine.checkpointers.store import WriteRange, field_batches
from flows.engine.checkpointers.types import CHUNK, LeaseGrant, StoredCheckpoint, StoredWrite
from flows.engine.errors import LeaseLost
from flows.packets import refusing_oversized

#: The checkpoint columns a ``StoredCheckpoint`` is built from, in its field order.
RECORD_FIELDS = ("checkpoint_id", "seq", "parent_id", "created_at", "run_id", "node", "blob")
#: Chunk size for ``IN`` lists and ``OR``-ed ranges (SQLite's parameter limit).
BATCH = 500


def _later(seconds: float) -> ExpressionWrapper:
    """The database's ``now + seconds``."""
    return ExpressionWrapper(Now() + dt.timedelta(seconds=seconds), output_field=DateTimeField())


def _free() -> Q:
    """The lease is not held, or its holder went silent for too long."""
    return Q(lease_until__isnull=True) | Q(lease_until__lt=Now())


def to_datetime(timestamp: float) -> dt.datetime:
    value = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return value if settings.USE_TZ else value.replace(tzinfo=None)


def to_timestamp(value: dt.datetime) -> float:
    if value.tzinfo is None:  # USE_TZ=False: stored as naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _record(session_id: str, row: Sequence[Any]) -> StoredCheckpoint:
    checkpoint_id, seq, parent_id, created_at, run_id, node, blob = row
    return StoredCheckpoint(
        session_id=session_id,
        checkpoint_id=checkpoint_id,
        seq=seq,
        parent_id=parent_id,
        created_at=to_timestamp(created_at),
        run_id=run_id,
        node=node,
        blob=bytes(blob),
    )


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class OrmStore:
    """The checkpoints of one flow in the ``using`` database.

    ``session_model``, ``checkpoint_model`` and ``write_model`` default to the
    app's models; a site with its own tables (subclasses of
    ``flows.base_models``) passes its classes.
    """

    def __init__(
        self,
        flow_name: str,
        using: str,
        *,
        ttl_seconds: float | None,
        session_model: type[models.Model],
        checkpoint_model: type[models.Model],
        write_model: type[models.Model],
    ) -> None:
        self.flow_name = flow_name
        self.using = using
        self.ttl_seconds = ttl_seconds
        self.Session = session_model
        self.Checkpoint = checkpoint_model
        self.Write = write_model

    # ------------------------------------------------------------------ helpers

    def _sessions(self):
        return self.Session._default_manager.using(self.using).filter(flow_name=self.flow_name)

    def _alive(self, prefix: str = "") -> Q:
        """Not expired: no TTL, written within it, or held right now."""
        if self.ttl_seconds is None:
            return Q()
        return (
            Q(**{f"{prefix}expires_at__isnull": True})
            | Q(**{f"{prefix}expires_at__gt": Now()})
            | Q(**{f"{prefix}lease_until__gt": Now()})
        )

    def _expiry(self) -> ExpressionWrapper | None:
        return None if self.ttl_seconds is None else _later(self.ttl_seconds)

    def _fence(self, session_pk: int, token: int, **changes: Any) -> None:
        """The first statement of every mutation: proves the lease, locks the row."""
        updated = (
            self.Session._default_manager.using(self.using)
            .filter(pk=session_pk, lease_token=token, lease_until__isnull=False)
            .update(updated_at=Now(), **changes)
        )
        if not updated:  # named by its id, as the other stores do (one read, on this path only)
            session_id = self._sessions().filter(pk=session_pk).values_list("session_id", flat=True).first()
            raise LeaseLost(f"session {session_id!r} of flow {self.flow_name!r}: this worker's lease was taken "
                            "over; write refused")

    def session_pk(self, session_id: str) -> int | None:
        return self._sessions().filter(session_id=session_id).values_list("pk", flat=True).first()

    # ------------------------------------------------------------------ leases

    def try_acquire(self, session_id: str, lease_seconds: float,
                    take_over: bool = False) -> tuple[LeaseGrant, int] | None:
        """Read, then compare-and-set: a busy session costs one read and no write.

        The ``UPDATE`` only succeeds if nobody acquired or wrote since the read
        (same token, same head, same ``last_seq``), so the head it returns is
        exact. A new token is above the old one and above the clock in
        microseconds, so tokens keep growing even if the row is deleted.
        ``take_over`` takes a held lease too (its holder's writes are refused).
        """
        row = (
            self._sessions()
            .filter(session_id=session_id)
            .annotate(
                free=ExpressionWrapper(_free(), output_field=BooleanField()),
                expired=(
                    ExpressionWrapper(Q(expires_at__lt=Now()), output_field=BooleanField())
                    if self.ttl_seconds is not None
                    else Value(False)
                ),
            )
            .values_list(
                "pk", "lease_token", "last_seq", "head_id", "free", "expired", *(f"head__{f}" for f in RECORD_FIELDS)
            )
            .first()
        )
        if row is None:
            return self._create(session_id, lease_seconds)
        pk, old_token, last_seq, head_id, free, expired, *head = row
        if not free and not take_over:
            return None
        token = max(old_token + 1, time.time_ns() // 1000)
        with transaction.atomic(using=self.using):
            taken = (
                self._sessions()
                .filter(Q() if take_over else _free(), pk=pk, lease_token=old_token, last_seq=last_seq,
                        head_id=head_id)
                .update(lease_token=token, lease_until=_later(lease_seconds))
            )
            if not taken:
                return None
            if expired:
                self._wipe(pk)
                return LeaseGrant(token, None, 0), pk
        record = _record(session_id, head) if head_id is not None else None
        return LeaseGrant(token, record, last_seq), pk

    def _create(self, session_id: str, lease_seconds: float) -> tuple[LeaseGrant, int] | None:
        token = time.time_ns() // 1000
        try:
            with transaction.atomic(using=self.using):
                session = self.Session._default_manager.using(self.using).create(
                    flow_name=self.flow_name,
                    session_id=session_id,
                    lease_token=token,
                    lease_until=_later(lease_seconds),
                )
        except IntegrityError:  # created concurrently: busy for now, retried by the caller
            return None
        return LeaseGrant(token, None, 0), session.pk

    def _wipe(self, session_pk: int) -> None:
        """Empties an expired session (inside the acquiring transaction)."""
        self.Session._default_manager.using(self.using).filter(pk=session_pk).update(
            head=None, last_seq=0, checkpoint_count=0, expires_at=None, status="idle"
        )
        self.Checkpoint._default_manager.using(self.using).filter(session_id=session_pk).delete()
        self.Write._default_manager.using(self.using).filter(session_id=session_pk).delete()

    def renew(self, session_pk: int, token: int, lease_seconds: float) -> bool:
        return bool(
            self.Session._default_manager.using(self.using)
            .filter(pk=session_pk, lease_token=token, lease_until__isnull=False)
            .update(lease_until=_later(lease_seconds))
        )

    def release(self, session_pk: int, token: int) -> None:
        self.Session._default_manager.using(self.using).filter(pk=session_pk, lease_token=token).update(
            lease_until=None
        )

    # ------------------------------------------------------------------ writing

    def write(
        self, session_pk: int, token: int, record: StoredCheckpoint, writes: list[StoredWrite], status: str
    ) -> None:
        with refusing_oversized(connections[self.using], record.session_id), transaction.atomic(using=self.using):
            self._fence(
                session_pk,
                token,
                head_id=record.checkpoint_id,
                last_seq=record.seq,
                checkpoint_count=F("checkpoint_count") + 1,
                status=status,
                expires_at=self._expiry(),
            )
            self.Checkpoint._default_manager.using(self.using).bulk_create(
                [
                    self.Checkpoint(
                        session_id=session_pk,
                        checkpoint_id=record.checkpoint_id,
                        seq=record.seq,
                        parent_id=record.parent_id,
                        created_at=to_datetime(record.created_at),
                        run_id=record.run_id,
                        node=record.node,
                        blob=record.blob,
                    )
                ]
            )
            self._add_writes(session_pk, writes)

    def _add_writes(self, session_pk: int, writes: Sequence[StoredWrite]) -> None:
        if writes:
            self.Write._default_manager.using(self.using).bulk_create(
                [self.Write(session_id=session_pk, seq=w.seq, field=w.field, op=w.op, blob=w.blob) for w in writes]
            )

    # ------------------------------------------------------------------ reading

    def read_head(self, session_id: str) -> StoredCheckpoint | None:
        row = (
            self._sessions()
            .filter(self._alive(), session_id=session_id, head__isnull=False)
            .values_list(*(f"head__{f}" for f in RECORD_FIELDS))
            .first()
        )
        return None if row is None else _record(session_id, row)

    def read_checkpoint(self, session_id: str, checkpoint_id: str) -> StoredCheckpoint | None:
        row = (
            self.Checkpoint._default_manager.using(self.using)
            .filter(
                self._alive("session__"),
                checkpoint_id=checkpoint_id,
                session__flow_name=self.flow_name,
                session__session_id=session_id,
            )
            .values_list(*RECORD_FIELDS)
            .first()
        )
        return None if row is None else _record(session_id, row)

    def read_writes(self, session_id: str, ranges: Mapping[str, tuple[int, int]]) -> list[StoredWrite]:
        return [write for batch in field_batches(ranges) for write in self._read_writes(session_id, batch)]

    def _read_writes(self, session_id: str, items: list[tuple[str, tuple[int, int]]]) -> list[StoredWrite]:
        """One query: a ``SELECT`` per range, joined by ``UNION ALL``, so each is one
        range of the (session, field, seq) index (one ``OR`` of them made SQLite scan
        every write of the session, and refuse past ~250 fields)."""
        writes = self.Write._default_manager.using(self.using).filter(
            self._alive("session__"), session__flow_name=self.flow_name, session__session_id=session_id
        )
        parts = []
        for name, (lo, hi) in items:
            parts.append(writes.filter(field=name, seq__gte=lo, seq__lte=hi))
            # the chunk that may cover lo, begun earlier in its window
            parts.append(writes.filter(field=name, op=CHUNK, seq__gte=window_start(lo), seq__lt=lo))
        columns = ("seq", "field", "op", "blob")
        first, *rest = (part.order_by().values_list(*columns) for part in parts)
        rows = first.union(*rest, all=True).order_by("field", "seq")  # two parts per field: never alone
        return [StoredWrite(seq, name, op, bytes(blob)) for seq, name, op, blob in rows]

    def read_chain(self, session_id: str, start: StoredCheckpoint, limit: int) -> list[StoredCheckpoint]:
        """``start`` and its ancestors in one recursive query: O(limit) index lookups."""
        connection = connections[self.using]
        quote = connection.ops.quote_name
        checkpoints = quote(self.Checkpoint._meta.db_table)
        sessions = quote(self.Session._meta.db_table)
        column = lambda model, name: quote(model._meta.get_field(name).column)  # noqa: E731
        cid, parent = column(self.Checkpoint, "checkpoint_id"), column(self.Checkpoint, "parent_id")
        session_fk, session_pk = column(self.Checkpoint, "session"), column(self.Session, self.Session._meta.pk.name)
        sql = f"""
            WITH RECURSIVE flows_chain (cid, parent, n) AS (
                SELECT c.{cid}, c.{parent}, 1
                FROM {checkpoints} c JOIN {sessions} s ON s.{session_pk} = c.{session_fk}
                WHERE c.{cid} = %s AND s.{column(self.Session, "flow_name")} = %s
                  AND s.{column(self.Session, "session_id")} = %s
                UNION ALL
                SELECT c.{cid}, c.{parent}, flows_chain.n + 1
                FROM {checkpoints} c JOIN flows_chain ON c.{cid} = flows_chain.parent
                WHERE flows_chain.n < %s
            )
            SELECT c.* FROM flows_chain JOIN {checkpoints} c ON c.{cid} = flows_chain.cid
            ORDER BY flows_chain.n
        """
        rows = self.Checkpoint._default_manager.using(self.using).raw(
            sql, [start.checkpoint_id, self.flow_name, session_id, limit]
        )
        return [_record(session_id, [getattr(row, name) for name in RECORD_FIELDS]) for row in rows]

    def read_records_from(self, session_id: str, min_seq: int) -> list[StoredCheckpoint]:
        rows = (
            self.Checkpoint._default_manager.using(self.using)
            .filter(
                self._alive("session__"),
                session__flow_name=self.flow_name,
                session__session_id=session_id,
                seq__gte=min_seq,
            )
            .order_by("seq")
            .values_list(*RECORD_FIELDS)
        )
        return [_record(session_id, row) for row in rows]

    def count(self, session_id: str) -> int:
        count = (
            self._sessions()
            .filter(self._alive(), session_id=session_id)
            .values_list("checkpoint_count", flat=True)
            .first()
        )
        return count or 0

    # ------------------------------------------------------------------ deleting

    def delete_ids(
        self,
        session_pk: int,
        token: int,
        ids: set[str],
        drop_writes: list[WriteRange],
        head: StoredCheckpoint,
        add_writes: Sequence[StoredWrite] = (),
    ) -> None:
        checkpoints = self.Checkpoint._default_manager.using(self.using).filter(session_id=session_pk)
        label = self.Checkpoint._meta.label
        with self._fenced(session_pk, token, head) as deleted:
            for batch in _batches(sorted(ids)):
                deleted.append(checkpoints.filter(checkpoint_id__in=batch).delete()[1].get(label, 0))
            self._delete_writes(session_pk, drop_writes)
            self._add_writes(session_pk, add_writes)

    def keep_only(
        self, session_pk: int, token: int, ids: set[str], drop_writes: list[WriteRange], head: StoredCheckpoint
    ) -> None:
        checkpoints = self.Checkpoint._default_manager.using(self.using).filter(session_id=session_pk)
        with self._fenced(session_pk, token, head) as deleted:
            _, per_model = checkpoints.exclude(checkpoint_id__in=list(ids)).delete()
            deleted.append(per_model.get(self.Checkpoint._meta.label, 0))
            self._delete_writes(session_pk, drop_writes)

    @contextmanager
    def _fenced(self, session_pk: int, token: int, head: StoredCheckpoint) -> Iterator[list[int]]:
        """A transaction that first points the head at ``head`` under ``token``; counts what the block deletes."""
        deleted: list[int] = []
        with transaction.atomic(using=self.using):
            self._fence(session_pk, token, head_id=head.checkpoint_id, status=head.status, expires_at=self._expiry())
            yield deleted
            if sum(deleted):
                self.Session._default_manager.using(self.using).filter(pk=session_pk).update(
                    checkpoint_count=F("checkpoint_count") - sum(deleted)
                )

    def _delete_writes(self, session_pk: int, ranges: list[WriteRange]) -> None:
        writes = self.Write._default_manager.using(self.using).filter(session_id=session_pk)
        for batch in _batches(ranges):
            doomed = Q()
            for name, lo, hi in batch:
                span = Q(seq__gte=lo, seq__lte=hi)
                doomed |= span if name is None else span & Q(field=name)
            writes.filter(doomed).delete()

    def delete_session(self, session_pk: int, token: int) -> None:
        """Empties the session and frees its lease; the row (owner, token) stays."""
        with transaction.atomic(using=self.using):
            self._fence(
                session_pk,
                token,
                head=None,
                last_seq=0,
                checkpoint_count=0,
                status="idle",
                lease_until=None,
                expires_at=None,
            )
            self.Checkpoint._default_manager.using(self.using).filter(session_id=session_pk).delete()
            self.Write._default_manager.using(self.using).filter(session_id=session_pk).delete()

    def session_ids(self) -> list[str]:
        """Sessions with history; with a TTL, expired ones are deleted on the way."""
        if self.ttl_seconds is not None:
            self._sessions().filter(_free(), expires_at__lt=Now()).delete()
        return list(
            self._sessions()
            .filter(self._alive(), head__isnull=False)
            .order_by("pk")
            .values_list("session_id", flat=True)
        )

    def stats(self) -> dict[str, int]:
        sessions = self._sessions().filter(self._alive(), head__isnull=False).count()
        totals = {}
        for name, model in (("checkpoints", self.Checkpoint), ("writes", self.Write)):
            totals[name] = (
                model._default_manager.using(self.using)
                .filter(session__flow_name=self.flow_name)
                .aggregate(rows=models.Count("pk"), size=Sum(Length("blob")))
            )
        return {
            "sessions": sessions,
            "checkpoints": totals["checkpoints"]["rows"],
            "writes": totals["writes"]["rows"],
            "bytes": (totals["checkpoints"]["size"] or 0) + (totals["writes"]["size"] or 0),
        }
