"""MySQL/MariaDB's ``max_allowed_packet``: a save too large for it is refused before it is sent.

The server refuses a statement longer than its ``max_allowed_packet`` and
closes the connection; past 16 MiB the client only sees the connection drop
("server has gone away", ``(0, '')``), which reads as an outage although
nothing will ever make that statement fit. So each connection reads its
server's limit once, when it is opened (the session value is fixed from then
on), and every save measures its statement against it first: over the limit
is :class:`StateTooLarge`, with nothing sent and the connection as good as
before. The SQL store (:mod:`.sql`) and the Django ORM store
(``flows.packets``) both check this way.

The size is the driver's own: ``text % args`` with every argument escaped by
the driver's connection (PyMySQL's, aiomysql's or mysqlclient's), encoded as it
sends it. PyMySQL ≥ 1.2 sends ``bytes`` as hex (``X'...'``), so a blob costs
twice its length there; aiomysql's hex blobs (see :func:`.sql.urls.needs_hex_blobs`) too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StateTooLarge

#: Where a pooled connection keeps its server's limit (its pool record's ``info``).
LIMIT_KEY = "flows_max_allowed_packet"
_MIB = 1 << 20
#: A driver connection's ``escape(value) -> SQL literal``.
Escape = Callable[[Any], str]


def read_limit(cursor: Any) -> int:
    """The connection's ``max_allowed_packet`` in bytes (one query, when it connects)."""
    cursor.execute("SELECT @@max_allowed_packet")
    return int(cursor.fetchone()[0])


def upper_bound(text: str, args: Sequence[Any]) -> int:
    """An upper bound of :func:`statement_size` from lengths alone (no escaping).

    A ``str`` character takes at most 2 bytes escaped if ASCII, 4 in UTF-8
    otherwise; a ``bytes`` one at most 2 (hex, or a backslash escape) plus a
    ``_binary X''`` frame; numbers and ``NULL`` at most 32 characters.
    """
    size = len(text.encode()) - 2 * len(args)
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            size += 2 * len(arg) + 16
        elif kind is str:
            size += (2 if arg.isascii() else 4) * len(arg) + 2
        else:
            size += 32
    return size


def statement_size(text: str, args: Sequence[Any], escape: Escape) -> int:
    """Bytes of the query the driver sends for ``text % args`` (``%s`` placeholders),
    ``escape`` being its connection's ``escape`` (what its ``execute`` applies)."""
    size = len(text.encode()) - 2 * len(args)
    for arg in args:
        size += len(escape(arg).encode("utf-8", "surrogateescape"))
    return size


def check_fits(session_id: str, text: str, args: Sequence[Any], limit: int | None, escape: Escape) -> None:
    """Raises :class:`StateTooLarge` if the query would not fit in ``limit``.

    The server counts the command byte too and refuses a packet of exactly
    ``limit`` bytes. Lengths settle almost every save; only a statement within
    a factor of about two of the limit is escaped in full to measure it.
    """
    if limit is None or upper_bound(text, args) + 1 < limit:
        return
    size = statement_size(text, args, escape)
    if size + 1 < limit:
        return
    needed = -(-(size + 1024) // _MIB) * _MIB
    raise StateTooLarge(
        f"session {session_id!r}: this checkpoint's statement would be {size:,} bytes, over the "
        f"MySQL/MariaDB server's max_allowed_packet of {limit:,} bytes (blobs travel escaped or as hex, up to "
        f"two bytes a byte), so it was not sent. Raise the limit on the server (SET GLOBAL "
        f"max_allowed_packet = {needed}, and max_allowed_packet = {needed // _MIB}M under [mysqld] in its "
        "configuration to keep it; at most 1G), or keep states smaller (compress=True; max_state_bytes "
        "refuses large states on every backend)"
    )
