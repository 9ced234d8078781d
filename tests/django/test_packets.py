"""The ORM store on MySQL/MariaDB refuses a save over ``max_allowed_packet`` (flows.packets), on the real server.

Before, Django sent it, the server dropped the connection, and the step
failed as "server has gone away": an outage that was not one.
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from flows.engine import END, START, FlowEngine
from flows.engine.errors import StateTooLarge
from flows.models import CheckpointWrite, FlowSession
from flows.packets import refusing_oversized
from tests.backends import backend_specs

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, databases=["default", "mariadb"])]

MIB = 1 << 20


def server_limit() -> int:
    with connections["mariadb"].cursor() as cursor:
        cursor.execute("SELECT @@max_allowed_packet")
        return int(cursor.fetchone()[0])


@pytest.fixture
def flow(tmp_path):
    checkpointer = backend_specs(str(tmp_path))["django-mariadb"]().create()
    flow = FlowEngine(dict, checkpointer)
    flow.add_node("n", lambda state: {"seen": True})
    flow.add_edge(START, "n").add_edge("n", END)
    return flow


async def test_a_state_over_the_limit_is_state_too_large_and_nothing_is_stored(flow):
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    limit = await sync_to_async(server_limit)()
    with pytest.raises(StateTooLarge) as caught:
        await flow.invoke({"big": "x" * (limit + MIB)}, session_id=session_id)
    message = str(caught.value)
    assert f"session {session_id!r}" in message
    assert f"max_allowed_packet of {limit:,} bytes" in message
    assert "SET GLOBAL max_allowed_packet" in message
    assert await flow.checkpointer.aget(session_id) is None
    # the connection is as good as before, and the session takes the next call
    assert await flow.invoke({"small": "y"}, session_id=session_id) == {"small": "y", "seen": True}


async def test_a_state_close_to_the_limit_is_saved(flow):
    """Only what the server would refuse is refused: PyMySQL sends blobs as hex
    (two bytes a byte), so half the limit less a margin fits."""
    near = "y" * (await sync_to_async(server_limit)() // 2 - 64 * 1024)
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    await flow.invoke({"near": near}, session_id=session_id)
    assert (await flow.checkpointer.aget(session_id)).state == {"near": near, "seen": True}


def test_the_guard_measures_only_mysql_statements():
    """On another database the statements pass through unmeasured, however large."""
    with refusing_oversized(connections["default"], "any"):
        assert connections["default"].execute_wrappers == []


def test_the_limit_is_read_once_per_connection():
    connection = connections["mariadb"]
    with refusing_oversized(connection, "any"):
        pass
    noted = connection.connection.flows_max_allowed_packet
    assert noted == server_limit()
    refuse = lambda execute, sql, *rest: pytest.fail(f"sent {sql}")  # noqa: E731
    with connection.execute_wrapper(refuse), refusing_oversized(connection, "any"):
        pass  # nothing is asked of the server again


def test_the_guard_leaves_small_bulk_writes_alone():
    session = FlowSession.objects.using("mariadb").create(flow_name="packets", session_id=f"s-{uuid.uuid4().hex[:8]}")
    rows = [CheckpointWrite(session=session, seq=n, field=f"f{n}", op="set", blob=b"v" * 100) for n in range(50)]
    with refusing_oversized(connections["mariadb"], session.session_id):
        CheckpointWrite.objects.using("mariadb").bulk_create(rows)
    assert CheckpointWrite.objects.using("mariadb").filter(session=session).count() == 50
