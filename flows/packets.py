"""MySQL/MariaDB's ``max_allowed_packet`` for the ORM store, as the SQL store checks it.

A save over the server's limit would be refused by the server, which drops the
connection: "server has gone away", an outage that is not one. Inside
:func:`refusing_oversized` every statement Django sends is measured first
(``flows.engine.checkpointers.packets``), so such a save is ``StateTooLarge``
and nothing is sent. The limit is read once per database connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from flows.engine.checkpointers import packets

#: Where a DB-API connection keeps its server's limit.
_LIMIT = "flows_max_allowed_packet"


def _limit(connection: BaseDatabaseWrapper) -> int:
    connection.ensure_connection()
    raw = connection.connection
    limit = getattr(raw, _LIMIT, None)
    if limit is None:
        with connection.cursor() as cursor:
            limit = packets.read_limit(cursor)
        setattr(raw, _LIMIT, limit)
    return limit


def _escape(raw: Any) -> packets.Escape:
    """The driver's own escaping: PyMySQL's ``escape`` (its ``literal`` is deprecated), or
    mysqlclient's ``literal``, which gives ``bytes``."""
    if type(raw).__module__.startswith("pymysql"):
        return raw.escape

    def escape(value: Any) -> str:
        return raw.literal(value).decode("utf-8", "surrogateescape")

    return escape


@contextmanager
def refusing_oversized(connection: BaseDatabaseWrapper, session_id: str) -> Iterator[None]:
    """Statements on ``connection`` (a MySQL one; others pass through) that
    would not fit are :class:`StateTooLarge` naming ``session_id``, unsent."""
    if connection.vendor != "mysql":
        yield
        return
    limit, escape = _limit(connection), _escape(connection.connection)

    def guard(execute: Callable[..., Any], sql: str, params: Sequence[Any] | None, many: bool, context: Any) -> Any:
        if params and not many:
            packets.check_fits(session_id, sql, params, limit, escape)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(guard):
        yield
