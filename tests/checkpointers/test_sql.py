"""SQL-specific behaviour of SQLCheckpointer (the shared contract is in tests/conformance).

Every test runs against real databases: SQLite files under ``tmp_path`` and the
PostgreSQL and MariaDB servers from ``scripts/with-test-services``; a missing
server is a loud failure (:func:`tests.backends.service_url`). Raw rows are
read with plain queries on the checkpointer's own connection.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from flows.engine.checkpointers.memory import InMemoryCheckpointer
from flows.engine.checkpointers.sql import SQLCheckpointer
from flows.engine.checkpointers.types import (
    SET,
    Change,
    StoredCheckpoint,
    StoredWrite,
)
from flows.engine.errors import CheckpointerUnavailable, LeaseLost, SerializationError
from tests.backends import backend_specs
from tests.turns import put_turns

pytestmark = pytest.mark.services

SQL_BACKENDS = [
    "sqlite",
    "sqlite-aiosqlite",
    "postgres-psycopg2",
    "postgres-asyncpg",
    "mariadb-pymysql",
    "mariadb-aiomysql",
]
SERVER_BACKENDS = [name for name in SQL_BACKENDS if not name.startswith("sqlite")]


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_password(url: str, password: str, port: int | None = None) -> str:
    parsed = make_url(url).set(password=password)
    if port is not None:
        parsed = parsed.set(port=port)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(params=SQL_BACKENDS)
def backend(request, tmp_path) -> str:
    return request.param


@pytest.fixture
async def make(backend: str, tmp_path) -> AsyncIterator[Callable[..., SQLCheckpointer]]:
    """Builds checkpointers on fresh tables (or a fresh file); drops them after the test."""
    made: list[SQLCheckpointer] = []
    spec = backend_specs(str(tmp_path))[backend]()

    def factory(like: SQLCheckpointer | None = None, **options: Any) -> SQLCheckpointer:
        if like is not None:
            options.setdefault("table_prefix", like.tables.prefix)
            cp = SQLCheckpointer(like.db.url.render_as_string(hide_password=False), **options)
        else:
            cp = spec.create(**options)
        made.append(cp)
        return cp

    yield factory
    if made:
        owner = made[0]
        await owner.db.run(lambda conn: _drop(owner, conn))
    for cp in made:
        await cp.aclose()


def _drop(cp: SQLCheckpointer, conn: Connection) -> None:
    cp.tables.metadata.drop_all(conn, checkfirst=True)
    conn.commit()


async def rows(cp: SQLCheckpointer, session_id: str) -> dict[str, Any]:
    """What the tables hold for a session, read with plain queries."""
    s, c, w = cp.tables.sessions, cp.tables.checkpoints, cp.tables.writes

    def work(conn: Connection) -> dict[str, Any]:
        return {
            "session": conn.execute(select(s.c.head_seq, s.c.last_seq).where(s.c.session_id == session_id)).first(),
            "checkpoints": conn.execute(
                select(func.count()).select_from(c).where(c.c.session_id == session_id)
            ).scalar(),
            "writes": conn.execute(select(func.count()).select_from(w).where(w.c.session_id == session_id)).scalar(),
            "blobs": [*map(bytes, conn.scalars(select(c.c.blob).where(c.c.session_id == session_id))),
                      *map(bytes, conn.scalars(select(w.c.blob).where(w.c.session_id == session_id)))],
        }

    return await cp.db.run(work)


# ------------------------------------------------------------------ connection strings and tables


async def test_each_connection_string_form_works(make, backend):
    cp = make()
    assert cp.db.backend.split("+")[1] == {
        "sqlite": "pysqlite",
        "sqlite-aiosqlite": "aiosqlite",
        "postgres-psycopg2": "psycopg2",
        "postgres-asyncpg": "asyncpg",
        "mariadb-pymysql": "pymysql",
        "mariadb-aiomysql": "aiomysql",
    }[backend]
    session_id = sid()
    await put_turns(cp, session_id, 3)
    head = await cp.aget(session_id)
    assert head.state == {"messages": ["m0", "m1", "m2"], "turn": 2}
    assert [m.step for m in await cp.alist(session_id)] == [3, 2, 1]
    again = make(like=cp)  # a second instance (new pools) reads the same rows
    assert (await again.aget(session_id)).state == head.state


async def test_tables_are_created_on_first_use_with_the_prefix(make):
    cp = make()
    prefix = cp.tables.prefix
    names = {f"{prefix}sessions", f"{prefix}checkpoints", f"{prefix}writes"}

    def table_names(conn: Connection) -> set[str]:
        return {name for name in inspect(conn).get_table_names() if name.startswith(prefix)}

    probe = make(like=cp)
    probe.db.prepare = None  # look without creating
    assert await probe.db.run(table_names) == set()
    await cp.aget(sid())  # first use: a read is enough
    assert await probe.db.run(table_names) == names

    def layout(conn: Connection) -> dict[str, Any]:
        inspector = inspect(conn)
        return {
            "checkpoints_pk": inspector.get_pk_constraint(f"{prefix}checkpoints")["constrained_columns"],
            "writes_pk": inspector.get_pk_constraint(f"{prefix}writes")["constrained_columns"],
            "unique": [u["column_names"] for u in inspector.get_unique_constraints(f"{prefix}checkpoints")]
            + [i["column_names"] for i in inspector.get_indexes(f"{prefix}checkpoints") if i["unique"]],
        }

    found = await probe.db.run(layout)
    assert found["checkpoints_pk"] == ["session_id", "seq"]
    assert found["writes_pk"] == ["session_id", "field", "seq"]
    assert ["session_id", "checkpoint_id"] in found["unique"]
    await make(like=cp).aget(sid())  # tables that exist already are fine


async def test_many_workers_creating_the_tables_at_once_all_succeed(make):
    first = make()
    others = [make(like=first) for _ in range(4)]
    session_ids = [sid() for _ in others]
    await asyncio.gather(*(put_turns(cp, s, 1) for cp, s in zip(others, session_ids, strict=True)))
    assert [(await first.aget(s)).state["turn"] for s in session_ids] == [0] * 4


async def test_default_prefix_is_flows(tmp_path):
    cp = SQLCheckpointer(f"sqlite:///{tmp_path}/default.db")
    await put_turns(cp, sid(), 1)
    names = await cp.db.run(lambda conn: set(inspect(conn).get_table_names()))
    assert names == {"flows_sessions", "flows_checkpoints", "flows_writes"}
    await cp.aclose()


def test_bad_table_prefix_is_refused(tmp_path):
    with pytest.raises(ValueError, match="table_prefix"):
        SQLCheckpointer(f"sqlite:///{tmp_path}/x.db", table_prefix="x; drop table")


def test_unsupported_database_is_refused_without_its_password():
    with pytest.raises(ValueError, match="supports PostgreSQL") as caught:
        SQLCheckpointer("oracle://scott:tiger-pw@localhost/db")
    assert "tiger-pw" not in str(caught.value)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_unreachable_server_names_the_url_without_its_password(make, backend):
    spec = backend_specs("/tmp")[backend]()
    port = closed_port()
    url = with_password(spec.args[0], "hunter2-pw", port=port)
    cp = SQLCheckpointer(url, connect_args=_connect_timeout(backend))
    with pytest.raises(CheckpointerUnavailable) as caught:
        await cp.aget(sid())
    message = str(caught.value)
    assert f":***@127.0.0.1:{port}/" in message
    assert cp.db.backend in message and "hunter2-pw" not in message
    await cp.aclose()


@pytest.mark.parametrize(
    "scheme, connect_args",
    [
        ("postgresql+psycopg2", {"connect_timeout": 1}),
        ("postgresql+asyncpg", {"timeout": 1}),
        ("mysql+pymysql", {"connect_timeout": 1, "read_timeout": 1}),
        ("mysql+aiomysql", {"connect_timeout": 1}),  # no read timeout: the connect guard (+5 s) ends it
    ],
)
async def test_a_server_that_never_answers_is_unavailable_not_a_hang(scheme, connect_args):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (the kernel does), never says a word
        port = silent.getsockname()[1]
        cp = SQLCheckpointer(f"{scheme}://u:pw-x@127.0.0.1:{port}/db", connect_args=connect_args)
        with pytest.raises(CheckpointerUnavailable, match=f"127.0.0.1:{port}"):
            await asyncio.wait_for(cp.aget(sid()), 30)
        await cp.aclose()


def _connect_timeout(backend: str) -> dict[str, Any]:
    if backend == "postgres-psycopg2":
        return {"connect_timeout": 5}
    if backend == "postgres-asyncpg":
        return {"timeout": 5}
    return {"connect_timeout": 5}


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_wrong_password_is_unavailable_without_the_password(make, backend):
    spec = backend_specs("/tmp")[backend]()
    cp = SQLCheckpointer(with_password(spec.args[0], "s3cret-wrong-pw"), table_prefix=spec.kwargs["table_prefix"])
    with pytest.raises(CheckpointerUnavailable) as caught:
        await cp.aacquire(sid(), on_busy="reject")
    assert "s3cret-wrong-pw" not in str(caught.value)
    assert ":***@" in str(caught.value)
    await cp.aclose()


def test_query_string_passwords_are_hidden_too():
    cp = SQLCheckpointer("postgresql+psycopg2://u@127.0.0.1:1/db?password=qs-secret&sslmode=disable")
    assert "qs-secret" not in cp.db.safe_url and "password=***" in cp.db.safe_url
    assert "qs-secret" not in repr(cp)


@pytest.mark.parametrize(
    "url, module, extra",
    [
        ("postgresql+asyncpg://u:pw-x@h/db", "asyncpg", "asyncpg"),
        ("postgresql+psycopg2://u:pw-x@h/db", "psycopg2", "postgres"),
        ("mysql+pymysql://u:pw-x@h/db", "pymysql", "mysql"),
        ("sqlite+aiosqlite:///x.db", "aiosqlite", "aiosqlite"),
    ],
)
def test_missing_driver_names_the_pip_extra(url, module, extra):
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules[{module!r}] = None
        from flows.engine.checkpointers.sql import SQLCheckpointer
        try:
            SQLCheckpointer({url!r})
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"pip install 'django-persistent-flows[{extra}]'" in out
    assert "pw-x" not in out


def test_missing_sqlalchemy_names_the_pip_extra():
    code = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "try:\n"
        "    from flows.engine.checkpointers import SQLCheckpointer\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'django-persistent-flows[sql]'" in out


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_dropped_connection_is_unavailable_and_the_next_call_reconnects(make, backend):
    cp = make()
    session_id = sid()
    await put_turns(cp, session_id, 1)
    killer = make(like=cp)
    pg = backend.startswith("postgres")

    async def drop_the_pooled_connection() -> None:
        ident = "SELECT pg_backend_pid()" if pg else "SELECT CONNECTION_ID()"
        victim = int(await cp.db.run(lambda conn: conn.exec_driver_sql(ident).scalar()))
        kill = f"SELECT pg_terminate_backend({victim})" if pg else f"KILL CONNECTION {victim}"
        await killer.db.run(lambda conn: conn.exec_driver_sql(kill))

    await drop_the_pooled_connection()
    with pytest.raises(CheckpointerUnavailable, match=r":\*\*\*@"):
        await cp.aget(session_id)
    assert (await cp.aget(session_id)).state["turn"] == 0

    # mid-run: the connection goes between two steps; the step fails whole
    lease = await cp.aacquire(session_id)
    head = await cp.aget_metadata(session_id)
    await drop_the_pooled_connection()
    with pytest.raises(CheckpointerUnavailable):
        await cp.aput(lease, parent=head, state={}, changes={"turn": Change(SET, 1)}, run_id="r", node="n", step=1)
    assert (await cp.aget(session_id)).state["turn"] == 0
    assert len(await cp.alist(session_id)) == 1
    await cp.aput(lease, parent=head, state={}, changes={"turn": Change(SET, 2)}, run_id="r", node="n", step=1)
    assert (await cp.aget(session_id)).state["turn"] == 2
    await cp.arelease(lease)


# ------------------------------------------------------------------ encryption


async def test_encrypted_data_is_not_readable_in_the_tables(make):
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    secret = f"top-secret-{uuid.uuid4().hex}"
    plain = make()
    session_id = sid()
    await put_turns(plain, session_id, 2, text=secret)
    assert any(secret.encode() in blob for blob in (await rows(plain, session_id))["blobs"])

    encrypted = make(like=plain, encryption_keys=[old_key])
    session_id = sid()
    await put_turns(encrypted, session_id, 3, text=secret)
    blobs = (await rows(encrypted, session_id))["blobs"]
    assert len(blobs) == 3 + 6
    assert not any(secret.encode() in blob for blob in blobs)
    assert all(blob.startswith(b"f") for blob in blobs)

    rotated = make(like=plain, encryption_keys=[new_key, old_key])
    assert (await rotated.aget(session_id)).state["messages"] == [f"{secret}{i}" for i in range(3)]
    with pytest.raises(SerializationError, match="encryption_keys"):
        await make(like=plain, encryption_keys=[new_key]).aget(session_id)


async def test_large_blobs_round_trip(make):
    """MySQL's plain BLOB stops at 64 KiB: blobs are LONGBLOB there."""
    cp = make()
    session_id = sid()
    big = "x" * 200_000
    async with cp.alock(session_id) as lease:
        await cp.aput(lease, parent=None, state={"big": big}, changes={"big": Change(SET, big)},
                      run_id="r", node="n", step=0)
    assert (await cp.aget(session_id)).state == {"big": big}


# ------------------------------------------------------------------ atomicity and fencing


async def test_a_stale_token_writes_and_deletes_nothing(make):
    cp = make(lease_seconds=0.2)
    session_id = sid()
    stale = await cp.aacquire(session_id)
    cp.lease_seconds = 30  # the next lease outlives the test, however slow the machine
    fresh = await cp.aacquire(session_id, timeout=5)
    assert fresh.token > stale.token
    with pytest.raises(LeaseLost):
        await cp.aput(stale, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)}, run_id="r", node="n", step=1)
    found = await rows(cp, session_id)
    assert (found["checkpoints"], found["writes"], found["session"].head_seq) == (0, 0, None)
    assert not await cp.store.renew(stale, 1.0)
    await cp.aput(fresh, parent=None, state={"x": 2}, changes={"x": Change(SET, 2)}, run_id="r", node="n", step=1)
    with pytest.raises(LeaseLost):
        await cp.store.delete_session(stale)
    await cp.arelease(stale)  # a stale release frees nothing
    with pytest.raises(LeaseLost):
        await cp.aput(stale, parent=None, state={"x": 3}, changes={"x": Change(SET, 3)}, run_id="r", node="n", step=2)
    assert (await cp.aget(session_id)).state == {"x": 2}
    assert (await rows(cp, session_id))["checkpoints"] == 1
    await cp.arelease(fresh)


async def test_a_failure_mid_write_leaves_no_partial_checkpoint(make):
    """The second INSERT fails (a duplicate write row) after the head moved and
    the record went in: the whole transaction rolls back."""
    cp = make()
    session_id = sid()
    await put_turns(cp, session_id, 2)
    before = await rows(cp, session_id)
    lease = await cp.aacquire(session_id)
    seq = lease.last_seq + 1
    record = StoredCheckpoint(session_id, uuid.uuid4().hex, seq, lease.head.checkpoint_id, 1.0, "r", "n", b"j{}")
    twice = [StoredWrite(seq, "turn", SET, b"j1"), StoredWrite(seq, "turn", SET, b"j2")]
    with pytest.raises(IntegrityError):
        await cp.store.write(lease, record, twice)
    assert await rows(cp, session_id) == before
    assert (await cp.aget(session_id)).state == {"messages": ["m0", "m1"], "turn": 1}
    # the lease is still good and the seq still free
    head = await cp.aget_metadata(session_id)
    await cp.aput(lease, parent=head, state={}, changes={"turn": Change(SET, 9)}, run_id="r", node="n", step=3)
    assert (await cp.aget(session_id)).state["turn"] == 9
    await cp.arelease(lease)


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
async def test_an_over_long_value_fails_the_step_and_writes_nothing(make, backend):
    cp = make()
    session_id = sid()
    await put_turns(cp, session_id, 1)
    before = await rows(cp, session_id)
    async with cp.alock(session_id) as lease:
        head = await cp.aget_metadata(session_id)
        too_long = "f" * 300  # field names are VARCHAR(255)
        with pytest.raises(Exception, match=r"(?i)too long|truncat"):
            await cp.aput(lease, parent=head, state={}, changes={"turn": Change(SET, 5), too_long: Change(SET, 1)},
                          run_id="r", node="n", step=1)
    assert await rows(cp, session_id) == before
    assert (await cp.aget(session_id)).state == {"messages": ["m0"], "turn": 0}


# ------------------------------------------------------------------ TTL and stats


async def test_ttl_expires_the_whole_session_and_purges_its_rows(make):
    cp = make(ttl_seconds=1.0)
    session_id, kept = sid(), sid()
    await put_turns(cp, session_id, 2)
    assert (await cp.aget(session_id)).state["turn"] == 1
    await asyncio.sleep(1.3)
    await put_turns(cp, kept, 1)
    assert await cp.aget(session_id) is None
    assert await cp.alist(session_id) == []
    assert await cp.store.session_ids() == [kept]
    found = await rows(cp, session_id)
    assert (found["session"], found["checkpoints"], found["writes"]) == (None, 0, 0)
    assert (await cp.aget_stats())["sessions"] == 1


async def test_a_held_lease_outlives_the_ttl(make):
    cp = make(ttl_seconds=0.1, lease_seconds=60)
    session_id = sid()
    lease = await cp.aacquire(session_id)
    await cp.aput(lease, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)}, run_id="r", node="n", step=1)
    await asyncio.sleep(0.3)
    assert (await cp.aget(session_id)).state == {"x": 1}
    await cp.arelease(lease)
    assert await cp.aget(session_id) is None


async def test_stats_match_the_in_memory_store(make):
    cp, memory = make(), InMemoryCheckpointer()
    for store in (cp, memory):
        for turns in (3, 7):
            await put_turns(store, f"stats-{turns}", turns)
    assert await cp.aget_stats() == await memory.aget_stats()


# ------------------------------------------------------------------ query counts


async def test_reads_take_a_constant_number_of_queries(make, monkeypatch):
    """Counts the queries the store sends (the database is real; only counted)."""
    cp = make(read_cache_size=0)  # count the store's queries, not the cache's savings
    short, long = sid(), sid()
    await put_turns(cp, short, 3)
    await put_turns(cp, long, 120)
    sent: list[str] = []
    fetch = cp.db.fetch

    async def counted(statement: Any, params: dict[str, Any]) -> list[Any]:
        sent.append(str(statement))
        return await fetch(statement, params)

    monkeypatch.setattr(cp.db, "fetch", counted)

    async def queries(call) -> int:
        before = len(sent)
        await call
        return len(sent) - before

    assert await queries(cp.aget(short)) == await queries(cp.aget(long)) == 2
    assert await queries(cp.alist(short, limit=5)) == await queries(cp.alist(long, limit=5)) == 2
    assert len(await cp.alist(long, limit=5)) == 5
    assert "RECURSIVE" in sent[-1].upper()


# ------------------------------------------------------------------ durability of each commit

#: Makes the session's own setting synchronous, whatever the test server's default.
_SYNCHRONOUS = {
    "postgres-psycopg2": {"options": "-c synchronous_commit=on"},
    "postgres-asyncpg": {"server_settings": {"synchronous_commit": "on"}},
}


@pytest.mark.parametrize("backend", list(_SYNCHRONOUS))
async def test_postgres_commits_only_the_release_and_compaction_lazily(make, backend):
    """On PostgreSQL a release and a compaction commit without waiting for the
    WAL flush (synchronous_commit off for their transaction only); the lease's
    acquire and every checkpoint stay synchronous. The test servers run with
    fsync off, so flushes cannot be counted there (bench table 3b counts them
    on durable servers): triggers record, row by row, the setting in force in
    the transaction that changes it."""
    cp = make(connect_args=_SYNCHRONOUS[backend])
    await cp.aget_stats()  # creates the tables
    prefix = cp.tables.prefix
    log, function = f"{prefix}sync_log", f"{prefix}log_sync"
    setup = [
        f"CREATE TABLE {log} (id BIGSERIAL PRIMARY KEY, tbl TEXT, op TEXT, old JSONB, new JSONB, sync TEXT)",
        f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {log} (tbl, op, old, new, sync) VALUES (TG_TABLE_NAME, TG_OP,
                CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END,
                CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END,
                current_setting('synchronous_commit'));
            RETURN NULL;
        END $$""",
        *(f"CREATE TRIGGER {table.name}_sync AFTER INSERT OR UPDATE OR DELETE ON {table.name} "
          f"FOR EACH ROW EXECUTE FUNCTION {function}()"
          for table in (cp.tables.sessions, cp.tables.checkpoints, cp.tables.writes)),
    ]

    def run(statements: list[str]) -> Callable[[Connection], Any]:
        def work(conn: Connection) -> Any:
            for statement in statements:
                conn.exec_driver_sql(statement)
            conn.commit()

        return work

    await cp.db.run(run(setup))
    try:
        talk, empty = sid(), sid()
        await put_turns(cp, talk, 70)  # seq 64 compacts the extends of seqs 1..63
        async with cp.alock(empty):
            pass  # released without a checkpoint: the session row goes
        assert len((await cp.aget(talk)).state["messages"]) == 70

        def read(conn: Connection) -> list[Any]:
            return list(conn.exec_driver_sql(f"SELECT tbl, op, old, new, sync FROM {log} ORDER BY id"))

        seen: dict[str, set[str]] = {}
        for tbl, op, old, new, sync in await cp.db.run(read):
            if tbl == cp.tables.sessions.name:
                if op == "DELETE" or new["lease_until"] is None:
                    kind = "release"  # of a session without checkpoints (its row goes), or of any other
                elif op == "INSERT" or new["lease_token"] != old["lease_token"]:
                    kind = "acquire"
                elif new["last_seq"] != old["last_seq"]:
                    kind = "checkpoint"
                else:
                    kind = "compaction"  # the head re-fenced, unchanged
            elif tbl == cp.tables.checkpoints.name:
                kind = "checkpoint"
            elif op == "DELETE" or new["op"] == "chunk":
                kind = "compaction"
            else:
                kind = "checkpoint"
            seen.setdefault(kind, set()).add(sync)
        assert seen == {"acquire": {"on"}, "checkpoint": {"on"}, "release": {"off"}, "compaction": {"off"}}
    finally:
        await cp.db.run(run([f"DROP FUNCTION {function}() CASCADE", f"DROP TABLE {log}"]))


# ------------------------------------------------------------------ loops, threads, processes


def test_sqlite_uses_wal_and_synchronous_normal(tmp_path):
    cp = SQLCheckpointer(f"sqlite:///{tmp_path}/wal.db")

    async def main() -> tuple[str, int]:
        await put_turns(cp, sid(), 1)

        def pragmas(conn: Connection) -> tuple[str, int]:
            return (
                conn.exec_driver_sql("PRAGMA journal_mode").scalar_one(),
                conn.exec_driver_sql("PRAGMA synchronous").scalar_one(),
            )

        try:
            return await cp.db.run(pragmas)
        finally:
            await cp.aclose()

    assert asyncio.run(main()) == ("wal", 1)  # 1 = NORMAL

    cp = SQLCheckpointer(f"sqlite:///{tmp_path}/full.db", sqlite_synchronous="full")
    assert asyncio.run(main()) == ("wal", 2)  # 2 = FULL
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        SQLCheckpointer(f"sqlite:///{tmp_path}/x.db", sqlite_synchronous="sometimes")


_WORKER = """
import asyncio, sys
from flows.engine.checkpointers.sql import SQLCheckpointer
from flows.engine.checkpointers.types import Change, EXTEND, SET

async def main(url, session_id, worker, count):
    cp = SQLCheckpointer(url, busy_timeout=60)
    for i in range(count):
        async with cp.alock(session_id, on_busy="wait", timeout=60) as lease:
            head = await cp.aget(session_id)
            message = f"{worker}-{i}"
            if head is None:
                await cp.aput(lease, parent=None, state={"messages": [message]},
                              changes={"messages": Change(SET, [message])}, run_id="r", node="n", step=0)
            else:
                state = {**head.state, "messages": head.state["messages"] + [message]}
                await cp.aput(lease, parent=head.metadata, state=state,
                              changes={"messages": Change(EXTEND, [message])}, run_id="r", node="n", step=0)
    await cp.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


@pytest.mark.parametrize("driver", ["sqlite", "sqlite+aiosqlite"])
def test_sqlite_across_processes_never_fails_with_database_is_locked(tmp_path, driver):
    url = f"{driver}:///{tmp_path}/shared.db"
    session_id = sid()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, session_id, str(n), "12"], stderr=subprocess.PIPE, text=True
        )
        for n in range(4)
    ]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 4, errors

    async def check() -> list[str]:
        cp = SQLCheckpointer(url)
        try:
            checkpoint = await cp.aget(session_id)
            assert checkpoint is not None
            return checkpoint.state["messages"]
        finally:
            await cp.aclose()

    messages = asyncio.run(check())
    assert len(messages) == 48
    assert sorted(messages) == sorted(f"{w}-{i}" for w in range(4) for i in range(12))


@pytest.mark.parametrize("url", ["sqlite://", "sqlite+aiosqlite://"])
def test_in_memory_sqlite_works_and_recreates_its_tables(url):
    cp = SQLCheckpointer(url)

    async def turn() -> dict:
        await put_turns(cp, "mem", 2)
        return (await cp.aget("mem")).state

    async def close() -> None:
        await cp.aclose()

    assert asyncio.run(turn()) == {"messages": ["m0", "m1"], "turn": 1}
    asyncio.run(close())  # the database goes with its engine; the next use starts empty
    assert asyncio.run(turn()) == {"messages": ["m0", "m1"], "turn": 1}
    asyncio.run(close())


# ------------------------------------------------------------------ query plans


def _plan_of_read_writes(cp: SQLCheckpointer, explain: str) -> Callable[[Connection], list[str]]:
    """The plan of the store's read of two fields' writes, as the database prints it."""
    store = cp.store
    params: dict[str, Any] = {"sid": "s"}
    for i, (name, lo, hi) in enumerate([("messages", 100, 200), ("intent", 150, 200)]):
        params.update({f"f{i}": name, f"lo{i}": lo, f"hi{i}": hi, f"w{i}": lo - lo % 64})
    text, args = store.db.bind(store.sql.read_writes(2), params)

    def plan(conn: Connection) -> list[str]:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(explain + text, args)
            return [str(row[-1]) for row in cursor.fetchall()]
        finally:
            cursor.close()

    return plan


async def test_reading_writes_on_sqlite_searches_key_ranges_not_the_whole_session(tmp_path):
    # one OR of the ranges made SQLite scan every write of the session: a turn's
    # read grew with the conversation (10,000 turns: 2 -> 6 ms)
    cp = SQLCheckpointer(f"sqlite:///{tmp_path / 'plan.db'}")
    await cp.aget(sid())  # creates the tables
    lines = await cp.store.db.run(_plan_of_read_writes(cp, "EXPLAIN QUERY PLAN "))
    searches = [line for line in lines if "flows_writes" in line]
    assert len(searches) == 4, lines
    assert all("(session_id=? AND field=? AND seq>? AND seq<?)" in line for line in searches), lines
    await cp.aclose()


async def test_reading_writes_on_postgres_uses_the_key_for_every_range():
    cp = backend_specs("/tmp")["postgres-psycopg2"]().create()
    await cp.aget(sid())
    lines = await cp.store.db.run(_plan_of_read_writes(cp, "EXPLAIN "))
    conditions = [line for line in lines if "Index Cond" in line]
    assert len(conditions) == 4, lines
    assert all("field" in line and "seq" in line for line in conditions), lines
    await cp.aclose()
