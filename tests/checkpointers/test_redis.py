"""Redis-specific behaviour of RedisCheckpointer (the shared contract is in tests/conformance).

Everything runs against the real server from ``scripts/with-test-services``;
a missing server is a loud failure (:func:`tests.backends.service_url`).
"""

from __future__ import annotations

import asyncio
import operator
import random
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis

from flows.engine import END, START, FlowEngine
from flows.engine.checkpointers.memory import InMemoryCheckpointer
from flows.engine.checkpointers.redis import RedisCheckpointer, redact_url
from flows.engine.checkpointers.types import SET, Change
from flows.engine.errors import CheckpointerUnavailable, LeaseLost, SerializationError
from tests.backends import service_url
from tests.redis_servers import Relay, connections_named, private_redis
from tests.turns import put_turns

pytestmark = pytest.mark.services


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def with_netloc(url: str, netloc: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture
def redis_url() -> str:
    return service_url("redis")


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client, to look at what the checkpointer stored."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def make(redis_url: str) -> AsyncIterator[Callable[..., RedisCheckpointer]]:
    """Builds checkpointers on a fresh prefix each; closes them after the test."""
    made: list[RedisCheckpointer] = []

    def factory(prefix: str | None = None, **options: Any) -> RedisCheckpointer:
        cp = RedisCheckpointer(redis_url, prefix=prefix or f"t{uuid.uuid4().hex[:10]}:", **options)
        made.append(cp)
        return cp

    yield factory
    for cp in made:
        await cp.aclose()


async def session_keys(raw: aioredis.Redis, cp: RedisCheckpointer, session_id: str) -> list[bytes]:
    return [key async for key in raw.scan_iter(match=f"*{{{session_id}}}*", count=1000)]


async def raw_values(raw: aioredis.Redis, keys: list[bytes]) -> list[bytes]:
    """Every stored byte string of ``keys``, read by type (never DUMP, which may compress)."""
    values: list[Any] = []  # bytes: ``raw`` does not decode replies (redis-py types them bytes | str)
    for key in keys:
        kind = await raw.type(key)
        if kind == b"string":
            values.append(await raw.get(key))
        elif kind == b"hash":
            values += (await raw.hgetall(key)).values()
        elif kind == b"zset":
            values += await raw.zrange(key, 0, -1)
        elif kind == b"set":
            values += await raw.smembers(key)
    return values


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ errors


async def test_unreachable_server_names_the_url_without_its_password():
    port = closed_port()
    cp = RedisCheckpointer(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(CheckpointerUnavailable) as caught:
        await cp.aget(sid())
    message = str(caught.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in message
    assert "Redis" in message and "hunter2" not in message
    await cp.aclose()


async def test_wrong_password_is_unavailable_without_the_password(redis_url):
    host = urlsplit(redis_url).netloc.rpartition("@")[2]
    cp = RedisCheckpointer(with_netloc(redis_url, f"nobody-{uuid.uuid4().hex[:6]}:s3cret-pw@{host}"))
    with pytest.raises(CheckpointerUnavailable) as caught:
        await cp.aacquire(sid(), on_busy="reject")
    assert "s3cret-pw" not in str(caught.value)
    assert ":***@" in str(caught.value)
    await cp.aclose()


async def test_a_wrong_password_is_tried_once_not_retried(redis_url):
    # redis-py counts a refused AUTH as a ConnectionError, which the retry policy
    # would send again; the server's ACL LOG counts each refused attempt
    user = f"nobody-{uuid.uuid4().hex[:8]}"
    host = urlsplit(redis_url).netloc.rpartition("@")[2]
    cp = RedisCheckpointer(with_netloc(redis_url, f"{user}:s3cret-pw@{host}"))
    with pytest.raises(CheckpointerUnavailable):
        await cp.aacquire(sid(), on_busy="reject")
    await cp.aclose()
    admin = aioredis.Redis.from_url(redis_url)
    try:
        entries = [entry for entry in await admin.acl_log(count=128) if entry.get("username") == user]
    finally:
        await admin.aclose()
    assert [entry["reason"] for entry in entries] == ["auth"]
    assert entries[0]["count"] == 1


def test_a_malformed_url_fails_at_construction_without_its_password():
    with pytest.raises(ValueError, match="invalid Redis URL") as caught:
        RedisCheckpointer("http://:pw@localhost:6379/0")
    assert "pw@" not in str(caught.value)


def test_redact_url_masks_netloc_and_query_passwords():
    assert redact_url("redis://user:pw@h:1/2") == "redis://user:***@h:1/2"
    assert redact_url("rediss://:pw@h/0?ssl_cert_reqs=none") == "rediss://:***@h/0?ssl_cert_reqs=none"
    assert redact_url("unix:///tmp/r.sock?db=1&password=pw") == "unix:///tmp/r.sock?db=1&password=***"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


async def test_dropped_connection_mid_run_is_unavailable(make, redis_url):
    """A proxy in front of the real server goes away between two steps of a run."""
    target = urlsplit(redis_url)
    proxy = await Relay.start(target.hostname or "127.0.0.1", target.port or 6379)
    userinfo = target.netloc.rpartition("@")[0]
    via_proxy = with_netloc(redis_url, f"{userinfo + '@' if userinfo else ''}127.0.0.1:{proxy.port}")
    cp = RedisCheckpointer(via_proxy, prefix=f"t{uuid.uuid4().hex[:10]}:")
    session_id = sid()
    lease = await cp.aacquire(session_id)
    await cp.aput(lease, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)}, run_id="r", node="n", step=1)
    await proxy.stop()
    with pytest.raises(CheckpointerUnavailable, match=f"127.0.0.1:{proxy.port}"):
        await cp.aput(lease, parent=None, state={"x": 2}, changes={"x": Change(SET, 2)}, run_id="r", node="n", step=2)
    await cp.aclose()
    # the first checkpoint is intact and nothing partial of the second exists
    direct = make(prefix=cp.prefix)
    assert (await direct.aget(session_id)).state == {"x": 1}
    assert len(await direct.alist(session_id)) == 1


def test_missing_redis_package_explains_the_extra():
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n"
        "    from flows.engine.checkpointers import RedisCheckpointer\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'django-persistent-flows[redis]'" in out


# ------------------------------------------------------------------ encryption


async def test_encrypted_values_are_not_readable_in_redis(make, raw):
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    secret = f"top-secret-{uuid.uuid4().hex}"
    plain = make()
    session_id = sid()
    await put_turns(plain, session_id, 2, text=secret)
    assert any(secret.encode() in value for value in await raw_values(raw, await session_keys(raw, plain, session_id)))

    encrypted = make(encryption_keys=[old_key])
    session_id = sid()
    await put_turns(encrypted, session_id, 3, text=secret)
    values = await raw_values(raw, await session_keys(raw, encrypted, session_id))
    assert values and not any(secret.encode() in value for value in values)

    rotated = make(prefix=encrypted.prefix, encryption_keys=[new_key, old_key])
    head = await rotated.aget(session_id)
    assert head.state["messages"] == [f"{secret}{i}" for i in range(3)]
    await put_turns(rotated, sid(), 1)  # the new key encrypts new data
    with pytest.raises(SerializationError, match="encryption_keys"):
        await make(prefix=encrypted.prefix, encryption_keys=[new_key]).aget(session_id)


# ------------------------------------------------------------------ TTL


async def pttls(raw: aioredis.Redis, keys: list[bytes]) -> list[int]:
    return [await raw.pttl(key) for key in keys]


async def test_ttl_applies_to_every_key_of_the_session_and_slides(make, raw):
    cp = make(ttl=600)
    session_id = sid()
    await put_turns(cp, session_id, 2)
    keys = await session_keys(raw, cp, session_id)
    assert len(keys) == 6  # session, cp, seq, fields, w:messages, w:turn
    assert all(500_000 < ttl <= 600_000 for ttl in await pttls(raw, keys))
    for key in keys:
        await raw.pexpire(key, 5_000)
    await put_turns(cp, session_id, 1)  # another write slides the expiry back up
    assert all(500_000 < ttl <= 600_000 for ttl in await pttls(raw, keys))


async def test_a_held_lease_outlives_the_ttl(make, raw):
    cp = make(ttl=0.05, lease_seconds=60)
    session_id = sid()
    lease = await cp.aacquire(session_id)
    await cp.aput(lease, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)}, run_id="r", node="n", step=1)
    keys = await session_keys(raw, cp, session_id)
    assert all(ttl > 50_000 for ttl in await pttls(raw, keys))
    await asyncio.sleep(0.1)  # past the TTL, but the lease holds the session
    assert (await cp.aget(session_id)).state == {"x": 1}
    await cp.arelease(lease)  # released after its TTL ran out: the session expires now
    assert await session_keys(raw, cp, session_id) == []
    assert await cp.aget(session_id) is None


async def test_without_ttl_keys_do_not_expire(make, raw):
    cp = make()
    session_id = sid()
    await put_turns(cp, session_id, 2)
    assert set(await pttls(raw, await session_keys(raw, cp, session_id))) == {-1}


# ------------------------------------------------------------------ leases


async def test_a_stale_token_writes_and_deletes_nothing(make, raw):
    cp = make(lease_seconds=0.05)
    session_id = sid()
    stale = await cp.aacquire(session_id)
    cp.lease_seconds = 30  # the next lease outlives the test, however slow the machine
    fresh = await cp.aacquire(session_id, timeout=5)
    assert fresh.token > stale.token
    with pytest.raises(LeaseLost):
        await cp.aput(stale, parent=None, state={"x": 1}, changes={"x": Change(SET, 1)}, run_id="r", node="n", step=1)
    assert not await raw.exists(f"{cp.prefix}{{{session_id}}}:cp")
    assert not await cp.store.renew(stale, 1.0)
    await cp.aput(fresh, parent=None, state={"x": 2}, changes={"x": Change(SET, 2)}, run_id="r", node="n", step=1)
    with pytest.raises(LeaseLost):
        await cp.store.delete_session(stale)
    assert (await cp.aget(session_id)).state == {"x": 2}
    await cp.arelease(fresh)


async def test_a_retried_acquire_gets_its_own_grant_back(make):
    """redis-py resends a command after a lost reply: the lease must not look busy to itself."""
    cp = make()
    session_id = sid()
    keys = [cp.store._base(session_id), cp.store._fence]
    first = await cp.store._run("acquire", keys, [30_000, 0, "request-1"])
    assert await cp.store._run("acquire", keys, [30_000, 0, "request-1"]) == first
    assert await cp.store._run("acquire", keys, [30_000, 0, "request-2"]) is None


async def test_a_killed_holder_frees_the_session_after_the_lease(make):
    first = make(lease_seconds=0.1)
    session_id = sid()
    await first.aacquire(session_id)  # never released: the holder "died"
    second = make(prefix=first.prefix, lease_seconds=0.1)
    lease = await second.aacquire(session_id, timeout=5)
    await second.arelease(lease)


# ------------------------------------------------------------------ keys


async def test_every_key_carries_the_prefix(make, raw):
    prefix = f"app[{uuid.uuid4().hex[:6]}]*?:"  # glob characters must not leak into SCAN
    cp = make(prefix=prefix, ttl=600)
    session_id = sid()
    await put_turns(cp, session_id, 3)
    await cp.aprune(session_id, keep=1)
    keys = await session_keys(raw, cp, session_id)
    assert keys and all(key.startswith(prefix.encode()) for key in keys)
    assert await raw.exists(f"{prefix}fence")
    other = make()
    await put_turns(other, sid(), 1)
    assert (await cp.aget_stats())["sessions"] == 1
    assert await cp.store.session_ids() == [session_id]


# ------------------------------------------------------------------ round trips and stats


class _CommandCounter:
    """Counts the commands a client sends (the server is real; only counted)."""

    def __init__(self, client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = client.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(*args, **kwargs)

        monkeypatch.setattr(client, "execute_command", counted)


async def test_round_trips_do_not_grow_with_history(make, monkeypatch):
    cp = make()
    short, long = sid(), sid()
    await put_turns(cp, short, 3)
    await put_turns(cp, long, 200)
    await cp.aget(short)  # loads the scripts once (SCRIPT LOAD is per server, not per call)
    await cp.alist(short, limit=5)
    counter = _CommandCounter(cp.store._link().client, monkeypatch)

    async def trips(call) -> int:
        before = counter.count
        await call
        return counter.count - before

    assert await trips(cp.aget(short)) == await trips(cp.aget(long)) == 2
    assert await trips(cp.alist(short, limit=5)) == await trips(cp.alist(long, limit=5)) == 2

    lease = await cp.aacquire(long)
    head = await cp.aget_metadata(long)
    state = await cp.amaterialise(head)
    one_write = await trips(
        cp.aput(lease, parent=head, state={**state, "turn": -1}, changes={"turn": Change(SET, -1)},
                run_id="r", node="n", step=1)
    )
    assert one_write == 1
    await cp.arelease(lease)


async def test_stats_match_the_in_memory_store(make):
    cp, memory = make(), InMemoryCheckpointer()
    for store in (cp, memory):
        for turns in (3, 7):
            await put_turns(store, f"stats-{turns}", turns)
    assert await cp.aget_stats() == await memory.aget_stats()
    assert (await cp.aget_stats())["sessions"] == 2


# ------------------------------------------------------------------ retries
#
# The server-wide tricks (CONFIG SET timeout, CLIENT KILL TYPE normal) run on a
# server of the test's own: the shared one serves the other xdist workers too.


class Chat(TypedDict):
    messages: Annotated[list, operator.add]
    log: Annotated[list, operator.add]


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[str, aioredis.Redis]]:
    """A private server's URL, and a client to administer it (its own connection is never killed)."""
    async with private_redis() as url:
        admin = aioredis.Redis.from_url(url)
        yield url, admin
        await admin.aclose()


async def test_a_connection_closed_by_the_server_while_idle_is_retried(own_server):
    """``timeout 1``: the server drops the checkpointer's connections while a node awaits."""
    url, admin = own_server
    name = f"cp-{uuid.uuid4().hex[:8]}"
    cp = RedisCheckpointer(f"{url}?client_name={name}", prefix="t:")
    closed: list[bool] = []
    idled: set[int] = set()

    async def idle(state):
        if state["messages"][-1] == "idle":
            idled.update(await connections_named(admin, name))
            # a real idle period: until the server has closed every connection of ours (1-2 s)
            deadline = asyncio.get_running_loop().time() + 2.5
            while await connections_named(admin, name) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            closed.append(not await connections_named(admin, name))
        return {"log": ["idle"]}

    flow = FlowEngine(Chat, cp)
    flow.add_node("a", lambda state: {"log": ["a"]}).add_node("idle", idle).add_node("b", lambda state: {"log": ["b"]})
    flow.add_edge(START, "a").add_edge("a", "idle").add_edge("idle", "b").add_edge("b", END)
    session_id = sid()
    await admin.config_set("timeout", 1)
    try:
        state = await flow.invoke({"messages": ["idle"]}, session_id=session_id)
        assert closed == [True], "the server did not close the idle connections within 2.5 s"
        assert state == {"messages": ["idle"], "log": ["a", "idle", "b"]}
        now = set(await connections_named(admin, name))
        assert idled and now and now.isdisjoint(idled)  # it went on over new connections
        # the lease was released: the session is free at once
        again = await flow.invoke({"messages": ["quick"]}, session_id=session_id, on_busy="reject")
        assert again == {"messages": ["idle", "quick"], "log": ["a", "idle", "b", "a", "idle", "b"]}
        assert len(await cp.alist_all(session_id)) == 2 * 4
    finally:
        await admin.config_set("timeout", 0)
        await cp.aclose()


def chain(checkpointer, nodes: int, between: Callable[[int], Any]) -> FlowEngine:
    """``n0 -> n1 -> ...``; node ``i`` awaits ``between(i)`` first."""

    def node(i: int):
        async def run(state):
            await between(i)
            return {"log": [f"n{i}"]}

        return run

    flow = FlowEngine(Chat, checkpointer)
    for i in range(nodes):
        flow.add_node(f"n{i}", node(i))
    flow.add_edge(START, "n0")
    for i in range(1, nodes):
        flow.add_edge(f"n{i - 1}", f"n{i}")
    flow.add_edge(f"n{nodes - 1}", END)
    return flow


async def history(cp, session_id: str) -> list[tuple]:
    """Every checkpoint as (node, step, next, state), oldest first: what must match exactly."""
    rows = []
    for meta in await cp.alist_all(session_id):
        rows.append((meta.node, meta.step, meta.next, (await cp.aget(session_id, meta.checkpoint_id)).state))
    return rows


async def test_connections_killed_during_a_run_are_retried(own_server):
    """15 ``CLIENT KILL``s at random moments of a 40-node run, in flight or between calls."""
    url, admin = own_server
    cp = RedisCheckpointer(url, prefix="t:")
    kills: list[asyncio.Task] = []

    async def kill_soon() -> int:
        await asyncio.sleep(random.uniform(0, 0.001))
        return await admin.client_kill_filter(_type="normal", skipme=True)

    async def between(i: int) -> None:
        # node 2k asks for a kill; it lands during node 2k, its checkpoint write or after;
        # node 2k+1 waits for it, so the run cannot outpace the kills
        if i < 30 and i % 2 == 0:
            kills.append(asyncio.create_task(kill_soon()))
        elif i < 30:
            await kills[-1]

    reference = InMemoryCheckpointer()

    async def nothing(i: int) -> None:
        pass

    session_id = sid()
    try:
        state = await chain(cp, 40, between).invoke({"messages": ["go"]}, session_id=session_id)
        expected = await chain(reference, 40, nothing).invoke({"messages": ["go"]}, session_id=session_id)
        assert state == expected == {"messages": ["go"], "log": [f"n{i}" for i in range(40)]}
        assert len(kills) == 15 and all(kill.result() >= 1 for kill in kills)  # every kill cut a connection
        assert await history(cp, session_id) == await history(reference, session_id)
        lease = await cp.aacquire(session_id, on_busy="reject")  # released at the end
        await cp.arelease(lease)
    finally:
        await cp.aclose()


async def _prime(cp: RedisCheckpointer) -> None:
    """Loads every script, so the next call of one is a single EVALSHA (never NOSCRIPT first)."""
    link = cp.store._link()
    for script in link.scripts.values():
        await link.client.script_load(script.script)


@pytest.fixture
async def relayed(redis_url) -> AsyncIterator[tuple[RedisCheckpointer, Relay]]:
    """A checkpointer that reaches the shared server through a :class:`Relay`."""
    target = urlsplit(redis_url)
    relay = await Relay.start(target.hostname or "127.0.0.1", target.port or 6379)
    userinfo = target.netloc.rpartition("@")[0]
    cp = RedisCheckpointer(with_netloc(redis_url, f"{userinfo + '@' if userinfo else ''}127.0.0.1:{relay.port}"),
                           prefix=f"t{uuid.uuid4().hex[:10]}:")
    await _prime(cp)
    yield cp, relay
    await cp.aclose()
    await relay.stop()


def lose_reply(cp: RedisCheckpointer, relay: Relay, script: str) -> None:
    """The next call of ``script`` runs on the server, but its reply is lost with its connection."""
    relay.drop_reply_to = cp.store._link().scripts[script].sha.encode()


async def put(cp: RedisCheckpointer, lease, parent, value: int):
    return await cp.aput(lease, parent=parent, state={"x": value}, changes={"x": Change(SET, value)},
                         run_id="r", node="n", step=value)


async def test_an_acquire_whose_reply_was_lost_gets_its_own_lease(relayed):
    cp, relay = relayed
    session_id = sid()
    lose_reply(cp, relay, "acquire")
    lease = await cp.aacquire(session_id, on_busy="reject")  # the replay finds its own lease, not "busy"
    assert relay.dropped == 1
    await put(cp, lease, None, 1)
    await cp.arelease(lease)
    assert (await cp.aget(session_id)).state == {"x": 1}


async def test_a_write_whose_reply_was_lost_is_stored_once(relayed):
    cp, relay = relayed
    session_id = sid()
    lease = await cp.aacquire(session_id)
    first = await put(cp, lease, None, 1)
    lose_reply(cp, relay, "write")
    second = await put(cp, lease, first, 2)
    assert relay.dropped == 1
    third = await put(cp, lease, second, 3)
    await cp.arelease(lease)
    assert [meta.checkpoint_id for meta in await cp.alist_all(session_id)] == [
        first.checkpoint_id, second.checkpoint_id, third.checkpoint_id]
    assert [(await cp.aget(session_id, meta.checkpoint_id)).state for meta in (first, second, third)] == [
        {"x": 1}, {"x": 2}, {"x": 3}]
    assert (await cp.aget_stats())["writes"] == 3  # one member per write, none doubled


async def test_a_prune_whose_reply_was_lost_deletes_what_it_should(relayed):
    cp, relay = relayed
    session_id = sid()
    await put_turns(cp, session_id, 5)
    lose_reply(cp, relay, "delete")
    assert await cp.aprune(session_id, keep=2) == 3
    assert relay.dropped == 1
    assert len(await cp.alist_all(session_id)) == 2
    assert (await cp.aget(session_id)).state == {"messages": [f"m{i}" for i in range(5)], "turn": 4}


async def test_a_session_delete_whose_reply_was_lost_succeeds(relayed):
    cp, relay = relayed
    session_id = sid()
    await put_turns(cp, session_id, 3)
    lose_reply(cp, relay, "delete_session")
    assert await cp.adelete(session_id) == 3  # the replay finds its own mark: no LeaseLost
    assert relay.dropped == 1
    assert await cp.aget(session_id) is None and await cp.alist_all(session_id) == []
    await put_turns(cp, session_id, 1)  # the session starts afresh, free at once
    assert (await cp.aget(session_id)).state == {"messages": ["m0"], "turn": 0}
    assert (await cp.aget_stats())["sessions"] == 1


async def test_a_release_whose_reply_was_lost_frees_the_session(relayed):
    cp, relay = relayed
    session_id = sid()
    await put_turns(cp, session_id, 1)
    lease = await cp.aacquire(session_id)
    lose_reply(cp, relay, "release")
    await cp.arelease(lease)
    assert relay.dropped == 1
    await cp.arelease(await cp.aacquire(session_id, on_busy="reject"))


async def test_a_renew_whose_reply_was_lost_keeps_the_lease(relayed):
    cp, relay = relayed
    session_id = sid()
    lease = await cp.aacquire(session_id)
    lose_reply(cp, relay, "renew")
    assert await cp.store.renew(lease, 30)
    assert relay.dropped == 1
    await put(cp, lease, None, 1)
    await cp.arelease(lease)
