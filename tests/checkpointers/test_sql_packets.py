"""MySQL/MariaDB's max_allowed_packet (flows.engine.checkpointers.sql.packets), on the real server.

A save whose statement the server would refuse is ``StateTooLarge`` naming
the limit, sent nowhere: before, the server dropped the connection and the
step failed as ``CheckpointerUnavailable ... (0, '')``, an outage that was
not one. The server's own limit is used as it is (no ``SET GLOBAL``: the
servers are shared by the parallel test workers).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import Connection

from flows.engine import END, START, FlowEngine
from flows.engine.checkpointers.packets import LIMIT_KEY, statement_size, upper_bound
from flows.engine.checkpointers.sql import SQLCheckpointer
from flows.engine.errors import StateTooLarge
from tests.backends import backend_specs

pytestmark = pytest.mark.services

MIB = 1 << 20


@pytest.fixture(params=["mariadb-pymysql", "mariadb-aiomysql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
async def checkpointer(backend, tmp_path) -> AsyncIterator[SQLCheckpointer]:
    """A checkpointer on fresh tables, dropped after the test."""
    cp = backend_specs(str(tmp_path))[backend]().create()
    yield cp

    def drop(conn: Connection) -> None:
        cp.tables.metadata.drop_all(conn, checkfirst=True)
        conn.commit()

    await cp.db.run(drop)
    await cp.aclose()


def echo_flow(cp: SQLCheckpointer) -> FlowEngine:
    flow = FlowEngine(dict, cp)
    flow.add_node("n", lambda state: {"seen": True})
    flow.add_edge(START, "n").add_edge("n", END)
    return flow


async def server(cp: SQLCheckpointer, work: Callable[[Connection], Any]) -> Any:
    return await cp.db.run(work)


async def test_a_state_over_the_limit_is_state_too_large_and_the_connection_stays_usable(checkpointer):
    flow = echo_flow(checkpointer)
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    await flow.invoke({"warm": 1}, session_id="warm-up")  # the tables exist, a connection is pooled
    limit = await server(checkpointer, lambda conn: int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar()))
    connection_id = lambda conn: conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()  # noqa: E731
    before = await server(checkpointer, connection_id)

    with pytest.raises(StateTooLarge) as caught:
        await flow.invoke({"big": "x" * (limit + MIB)}, session_id=session_id)
    message = str(caught.value)
    assert f"session {session_id!r}" in message
    assert f"max_allowed_packet of {limit:,} bytes" in message
    assert "SET GLOBAL max_allowed_packet" in message

    # nothing was sent: the same connection serves the next call, and nothing was stored
    assert await server(checkpointer, connection_id) == before
    assert await checkpointer.aget(session_id) is None
    assert await flow.invoke({"small": "y"}, session_id=session_id) == {"small": "y", "seen": True}
    assert await server(checkpointer, connection_id) == before


async def test_a_state_close_to_the_limit_is_saved(checkpointer):
    """The check refuses only what the server would: blobs travel hex-encoded
    (two bytes a byte), so half the limit less a margin fits."""
    flow = echo_flow(checkpointer)
    limit = await server(checkpointer, lambda conn: int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar()))
    near = "y" * (limit // 2 - 64 * 1024)
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    await flow.invoke({"near": near}, session_id=session_id)
    assert (await checkpointer.aget(session_id)).state == {"near": near, "seen": True}


async def test_each_connection_keeps_its_server_limit(checkpointer):
    def read(conn: Connection) -> tuple[Any, int]:
        limit = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
        return conn.connection.info.get(LIMIT_KEY), limit

    noted, actual = await server(checkpointer, read)
    assert noted == actual


@pytest.mark.parametrize("backend", ["mariadb-pymysql"])
async def test_the_measured_size_is_what_pymysql_sends(checkpointer):
    text = "INSERT INTO t (a, b, c, d, e, f, g) VALUES (%s, %s, %s, %s, %s, UNHEX(%s), %s);COMMIT"
    args = [
        123456789012,
        1767225600.123456,
        None,
        "quotes ' \" back\\slash NUL\0 \n\r\x1a é € 😀",
        bytes(range(256)) * 3,
        (b"\x00'\"\\" * 50).hex(),
        "plain",
    ]

    def measure(conn: Connection) -> tuple[int, int]:
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        try:
            sent = len(cursor.mogrify(text, args).encode(driver.encoding, "surrogateescape"))
        finally:
            cursor.close()
        return sent, statement_size(text, args, driver.escape)

    sent, measured = await checkpointer.db.run(measure)
    assert measured == sent
    assert upper_bound(text, args) >= sent
