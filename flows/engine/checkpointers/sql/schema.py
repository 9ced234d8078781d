"""The three tables of :class:`SQLCheckpointer`, and their creation on first use.

``{prefix}sessions``
    One row per session: the head pointer (``head_seq``/``head_id``), the
    highest seq ever written (``last_seq``), the lease (``lease_token``,
    ``lease_until``; ``NULL`` means free) and ``updated_at`` for the TTL.
``{prefix}checkpoints``
    One row per checkpoint, keyed by ``(session_id, seq)``; the encoded metadata
    is ``blob``. ``(session_id, checkpoint_id)`` is unique: parents are found by id.
``{prefix}writes``
    One row per field a checkpoint changed, keyed by ``(session_id, field, seq)``
    so the live writes of every field of a state are one index range each.

No other index: each one is written on every step, and the step is the hot
path. The rarer queries make do with the primary keys: retention deletes a
session's writes by seq range within the ``session_id`` prefix, and the TTL
sweep (:meth:`aprune` of every session, stats) scans ``sessions``.

Times are epoch seconds in ``DOUBLE`` columns: leases and TTLs compare them
with the database's clock (see :mod:`.dialects`), which is the same on every host.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql

#: Session and checkpoint ids are validated ASCII; MySQL compares them
#: case-sensitively only with a binary collation.
_ID = String(255).with_variant(mysql.VARCHAR(255, charset="ascii", collation="ascii_bin"), "mysql", "mariadb")
#: State field names are any text; binary collation keeps "A" and "a" apart.
_FIELD = String(255).with_variant(
    mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)
#: MySQL's plain BLOB stops at 64 KiB; LONGBLOB holds up to 4 GiB.
_BLOB = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class _MySQLOptions(TypedDict):
    """Table options for MySQL/MariaDB (``Table``'s ``mysql_*`` keywords; other dialects ignore them)."""

    mysql_engine: str
    mysql_charset: str


_MYSQL_OPTIONS: _MySQLOptions = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


@dataclass(frozen=True)
class Tables:
    metadata: MetaData
    sessions: Table
    checkpoints: Table
    writes: Table

    @property
    def prefix(self) -> str:
        return self.sessions.name[: -len("sessions")]


def build_tables(prefix: str) -> Tables:
    """The table definitions for ``prefix`` (a fresh :class:`MetaData` each time)."""
    if not prefix.replace("_", "").isalnum():
        raise ValueError(f"table_prefix must be letters, digits and underscores, not {prefix!r}")
    metadata = MetaData()
    sessions = Table(
        f"{prefix}sessions",
        metadata,
        Column("session_id", _ID, primary_key=True),
        Column("head_seq", BigInteger, nullable=True),
        Column("head_id", _ID, nullable=True),
        Column("last_seq", BigInteger, nullable=False),
        Column("lease_token", BigInteger, nullable=False),
        Column("lease_until", Double, nullable=True),
        Column("updated_at", Double, nullable=False),
        **_MYSQL_OPTIONS,
    )
    checkpoints = Table(
        f"{prefix}checkpoints",
        metadata,
        Column("session_id", _ID, primary_key=True),
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("checkpoint_id", _ID, nullable=False),
        Column("parent_id", _ID, nullable=True),
        Column("created_at", Double, nullable=False),
        Column("run_id", Text, nullable=False),
        Column("node", Text, nullable=True),
        Column("blob", _BLOB, nullable=False),
        UniqueConstraint("session_id", "checkpoint_id", name=f"{prefix}checkpoints_id"),
        **_MYSQL_OPTIONS,
    )
    writes = Table(
        f"{prefix}writes",
        metadata,
        Column("session_id", _ID, primary_key=True),
        Column("field", _FIELD, primary_key=True),
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("op", String(16), nullable=False),
        Column("blob", _BLOB, nullable=False),
        **_MYSQL_OPTIONS,
    )
    return Tables(metadata, sessions, checkpoints, writes)


def create_tables(conn: Connection, tables: Tables, family: str) -> None:
    """Creates missing tables and indexes, serialised across processes.

    Several workers may start at once against an empty database; a
    database-level lock makes the check-then-create atomic so none of them
    fails with "table already exists". The caller commits.
    """
    key = zlib.crc32(tables.prefix.encode())
    if family == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif family == "mysql":
        conn.execute(text("SELECT GET_LOCK(:name, 60)"), {"name": f"flows_schema_{key}"})
    try:
        tables.metadata.create_all(conn, checkfirst=True)
    finally:
        if family == "mysql":
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": f"flows_schema_{key}"})
