"""Checkpoints in Redis (plain Redis 6.2+ or Valkey, no modules), on redis-py's asyncio client.

Every operation is one Lua script or one command, so each is atomic and costs
one round trip: a checkpoint write checks the fencing token, stores the record
and its field writes, moves the head and refreshes the TTL in a single
``EVALSHA``; nothing is left half-written if it fails.

Key layout, for ``prefix="flows:"`` and session ``S`` (the ``{S}`` braces are a
hash tag: every key of a session lives in one cluster slot)::

    flows:fence              string  the fencing-token counter (INCR), shared by every session
    flows:{S}                hash    head (checkpoint id), seq (highest seq written),
                                     t (last write, server ms), tok (fencing token of the
                                     last lease), exp (lease deadline, server ms; 0 = released),
                                     req (id of the acquire call that took the lease),
                                     del (token of the lease that deleted the session)
    flows:{S}:cp             hash    checkpoint id -> record (header + encoded metadata)
    flows:{S}:seq            zset    checkpoint id scored by seq (ordering, counting)
    flows:{S}:fields         set     names of the fields that have writes
    flows:{S}:w:<field>      zset    "<seq>:<op>:" + encoded value, scored by seq

A record is ``"<seq> <created_at> <len id> <len parent> <len run> <len node|-1>\\n"``
followed by the id, parent id, run id, node name and the metadata blob, so the
chain-walking script can find a parent without decoding anything.

Leases: the session hash holds the token and deadline of the current lease.
A lease is free once released or once its deadline (Redis server time, so
clocks of workers do not matter) has passed; taking it INCRs ``fence``, so a
token is never reused, even after the session was deleted or expired. A
write is refused unless the session's token is the writer's and the lease
was not released — a lease that lapsed but was not taken over still writes,
as with every other backend.

Retries (:mod:`.redis_retry`): a command whose connection fails (closed by the
server while idle, killed, timed out) is sent again on a new connection, up to
3 more times with backoff. When only the reply was lost, the server runs the
script twice, so every script gives the same outcome when run again right
after itself with the same arguments (the caller waits for the reply, so
nothing of its own comes in between but a lease renewal, which only moves the
deadline):

* reads, ``renew`` (sets the same deadline again) and ``release`` (the lease is
  already released, or the session hash already gone: nothing changes) are
  idempotent;
* ``acquire`` finds the lease held under its own request id and returns the
  same grant instead of "busy";
* ``write`` rewrites the same record under the same id and seq, the same
  members of the same zsets and sets (no duplicates), the same head;
* ``delete`` removes what is already removed, adds the same chunks again and sets the same head;
* ``delete_session`` leaves a mark (``del``: its token) in a released session
  hash, so its replay succeeds instead of finding the lease gone.

Between the two runs another worker may take the lease over (only once the
lease expired, or with ``on_busy="interrupt"``/``"rollback"``). The replay is then
fenced out like any late write: ``LeaseLost``, although the first run did
land, as it could have landed just before the take-over; what it wrote is a
whole checkpoint under a lease that was valid, and the new holder read the
head after it.

TTL: with ``ttl`` every key of a session gets the same ``PEXPIREAT`` at each
write (``now + ttl``), never earlier than the deadline of a held lease, so
the session expires whole and never under a live holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

try:
    from redis import exceptions as redis_errors
    from redis.asyncio import Redis
    from redis.asyncio.connection import parse_url
    from redis.commands.core import AsyncScript
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "RedisCheckpointer needs the 'redis' package: pip install 'django-persistent-flows[redis]'"
    ) from exc

from ..errors import CheckpointerUnavailable
from ..ids import SESSION_ID_PATTERN
from .checkpointer import Checkpointer
from .delta import window_start
from .redis_retry import retry_options
from .store import WriteRange, lease_lost
from .types import CHUNK, EXTEND, SET, Lease, LeaseGrant, StoredCheckpoint, StoredWrite

#: Errors meaning "the server cannot serve us": turned into CheckpointerUnavailable.
#: (Authentication errors are ConnectionError subclasses in redis-py.)
_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.NoPermissionError,
    redis_errors.AuthenticationWrongNumberOfArgsError,
)
_OPS = {SET: b"s", EXTEND: b"e", CHUNK: b"c"}
_OP_NAMES = {ord("s"): SET, ord("e"): EXTEND, ord("c"): CHUNK}
_STATS_BATCH = 200

# --------------------------------------------------------------------------- Lua

_PRELUDE = """
local function int(x) return string.format('%d', x) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function session_keys(base)
  local keys = {base, base .. ':cp', base .. ':seq', base .. ':fields'}
  for _, name in ipairs(redis.call('SMEMBERS', base .. ':fields')) do
    keys[#keys + 1] = base .. ':w:' .. name
  end
  return keys
end
local function expire_at(base, at)
  for _, key in ipairs(session_keys(base)) do redis.call('PEXPIREAT', key, int(at)) end
end
local function drop(base)
  for _, key in ipairs(session_keys(base)) do redis.call('DEL', key) end
end
local function held(base, token)
  local lease = redis.call('HMGET', base, 'tok', 'exp')
  if lease[1] ~= token or not lease[2] or lease[2] == '0' then return false end
  return tonumber(lease[2])
end
-- while a lease lives the session must not expire: data keys at least until its deadline
local function outlive(base, ttl, deadline)
  local state = redis.call('HMGET', base, 'head', 't')
  if not state[1] then
    redis.call('PEXPIREAT', base, int(deadline))
  elseif ttl > 0 then
    expire_at(base, math.max(tonumber(state[2]) + ttl, deadline))
  end
end
local function header(record)
  local nl = string.find(record, '\\n', 1, true)
  local ilen, plen, rlen, nlen = string.match(string.sub(record, 1, nl),
    '^%S+ %S+ (%d+) (%d+) (%d+) (%-?%d+)')
  return nl, tonumber(ilen), tonumber(plen), tonumber(rlen), math.max(tonumber(nlen), 0)
end
"""

# KEYS: base, fence. ARGV: lease_ms, ttl_ms, request id, take over ('1': even a held lease).
# -> nil (busy) | {token, head record, last seq}
# The request id makes a retry of this very call (redis-py retries after a lost
# reply) get its own grant back instead of finding the session busy.
_ACQUIRE = """
local base = KEYS[1]
local now = now_ms()
local state = redis.call('HMGET', base, 'exp', 'head', 'seq', 'req', 'tok', 'del')
local token = tonumber(state[5])
if state[1] and tonumber(state[1]) > now and (ARGV[4] ~= '1' or state[4] == ARGV[3]) then
  if state[4] ~= ARGV[3] then return false end
else
  token = redis.call('INCR', KEYS[2])
  local deadline = now + tonumber(ARGV[1])
  redis.call('HSET', base, 'tok', int(token), 'exp', int(deadline), 'req', ARGV[3])
  if state[6] then redis.call('HDEL', base, 'del') end
  outlive(base, tonumber(ARGV[2]), deadline)
end
local record = false
if state[2] then record = redis.call('HGET', base .. ':cp', state[2]) end
return {token, record, state[3] or '0'}
"""

# KEYS: base. ARGV: token, lease_ms, ttl_ms. -> 1 | 0 (taken over)
_RENEW = """
local base = KEYS[1]
if not held(base, ARGV[1]) then return 0 end
local deadline = now_ms() + tonumber(ARGV[2])
redis.call('HSET', base, 'exp', int(deadline))
outlive(base, tonumber(ARGV[3]), deadline)
return 1
"""

# KEYS: base. ARGV: token, ttl_ms. Frees the lease; then the session expires on its own clock.
_RELEASE = """
local base = KEYS[1]
local state = redis.call('HMGET', base, 'tok', 'head', 't')
if state[1] ~= ARGV[1] then return 0 end
if not state[2] then redis.call('DEL', base) return 1 end
redis.call('HSET', base, 'exp', '0')
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  local at = tonumber(state[3]) + ttl
  if at <= now_ms() then drop(base) else expire_at(base, at) end
end
return 1
"""

# KEYS: base. ARGV: token, ttl_ms, id, seq, record, then (field, member) pairs. -> 1 | 0 (fenced)
_WRITE = """
local base = KEYS[1]
local state = redis.call('HMGET', base, 'tok', 'exp', 'head')
if state[1] ~= ARGV[1] or not state[2] or state[2] == '0' then return 0 end
local id, seq = ARGV[3], ARGV[4]
redis.call('HSET', base .. ':cp', id, ARGV[5])
redis.call('ZADD', base .. ':seq', seq, id)
if #ARGV > 5 then
  local names = {}
  for i = 6, #ARGV, 2 do
    names[#names + 1] = ARGV[i]
    redis.call('ZADD', base .. ':w:' .. ARGV[i], seq, ARGV[i + 1])
  end
  redis.call('SADD', base .. ':fields', unpack(names))
end
local now = now_ms()
redis.call('HSET', base, 'head', id, 'seq', seq, 't', int(now))
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  expire_at(base, math.max(now + ttl, tonumber(state[2])))
elseif not state[3] then
  redis.call('PERSIST', base)  -- first checkpoint: the session outlives its lease now
end
return 1
"""

# KEYS: base. -> head record | nil
_READ_HEAD = """
local head = redis.call('HGET', KEYS[1], 'head')
if not head then return false end
return redis.call('HGET', KEYS[1] .. ':cp', head)
"""

# KEYS: base. ARGV: (field, lo, hi) triples. -> one array of members per triple
_READ_WRITES = """
local out = {}
for i = 1, #ARGV, 4 do
  local key = KEYS[1] .. ':w:' .. ARGV[i]
  local found = redis.call('ZRANGEBYSCORE', key, ARGV[i + 1], ARGV[i + 2])
  -- the chunk that may cover the range's start, begun earlier in its window (ARGV[i + 3])
  for _, member in ipairs(redis.call('ZREVRANGEBYSCORE', key, '(' .. ARGV[i + 1], ARGV[i + 3])) do
    local colon = string.find(member, ':', 1, true)
    if string.sub(member, colon + 1, colon + 1) == 'c' then
      table.insert(found, 1, member)
      break
    end
  end
  out[#out + 1] = found
end
return out
"""

# KEYS: base. ARGV: first id, limit. -> records, following parent ids
_READ_CHAIN = """
local cp, id, limit, out = KEYS[1] .. ':cp', ARGV[1], tonumber(ARGV[2]), {}
while id ~= '' and #out < limit do
  local record = redis.call('HGET', cp, id)
  if not record then break end
  out[#out + 1] = record
  local nl, ilen, plen = header(record)
  id = string.sub(record, nl + ilen + 1, nl + ilen + plen)
end
return out
"""

# KEYS: base. ARGV: min seq. -> records in seq order
_READ_FROM = """
local cp, out = KEYS[1] .. ':cp', {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1] .. ':seq', ARGV[1], '+inf')) do
  out[#out + 1] = redis.call('HGET', cp, id)
end
return out
"""

# KEYS: base. ARGV: token, ttl_ms, head id, 'keep'|'drop', n, n ids, then (field, lo, hi)
# triples where field is '*' (every field) or '=' .. name. -> 1 | 0 (fenced)
_DELETE = """
local base = KEYS[1]
local deadline = held(base, ARGV[1])
if not deadline then return 0 end
local cp, order, n = base .. ':cp', base .. ':seq', tonumber(ARGV[5])
if ARGV[4] == 'keep' then
  local keep = {}
  for i = 6, 5 + n do keep[ARGV[i]] = true end
  for _, id in ipairs(redis.call('ZRANGE', order, 0, -1)) do
    if not keep[id] then redis.call('HDEL', cp, id) redis.call('ZREM', order, id) end
  end
else
  for i = 6, 5 + n do redis.call('HDEL', cp, ARGV[i]) redis.call('ZREM', order, ARGV[i]) end
end
local fields = redis.call('SMEMBERS', base .. ':fields')
local ranges = tonumber(ARGV[6 + n])
for i = 7 + n, 6 + n + 3 * ranges, 3 do
  if ARGV[i] == '*' then
    for _, name in ipairs(fields) do
      redis.call('ZREMRANGEBYSCORE', base .. ':w:' .. name, ARGV[i + 1], ARGV[i + 2])
    end
  else
    redis.call('ZREMRANGEBYSCORE', base .. ':w:' .. string.sub(ARGV[i], 2), ARGV[i + 1], ARGV[i + 2])
  end
end
for i = 7 + n + 3 * ranges, #ARGV, 3 do  -- writes that replace some of the dropped ones (chunks)
  redis.call('ZADD', base .. ':w:' .. ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
for _, name in ipairs(fields) do
  if redis.call('EXISTS', base .. ':w:' .. name) == 0 then redis.call('SREM', base .. ':fields', name) end
end
local now = now_ms()
redis.call('HSET', base, 'head', ARGV[3], 't', int(now))
local ttl = tonumber(ARGV[2])
if ttl > 0 then expire_at(base, math.max(now + ttl, deadline)) end
return 1
"""

# KEYS: base. ARGV: token. -> 1 | 0 (fenced)
# What is left is a released lease marked 'del' with the deleting token (until
# the lease is released or taken again, a minute at most): a replay of this
# call, after its reply was lost, finds its own mark and succeeds instead of
# raising LeaseLost.
_DELETE_SESSION = """
local base = KEYS[1]
if redis.call('HGET', base, 'del') == ARGV[1] then return 1 end
if not held(base, ARGV[1]) then return 0 end
drop(base)
redis.call('HSET', base, 'tok', ARGV[1], 'exp', '0', 'del', ARGV[1])
redis.call('PEXPIRE', base, 60000)
return 1
"""

# KEYS: bases. -> {sessions, checkpoints, writes, bytes}; bytes counts blobs, not headers
_STATS = """
local sessions, checkpoints, writes, bytes = 0, 0, 0, 0
for _, base in ipairs(KEYS) do
  local records = redis.call('HVALS', base .. ':cp')
  if #records > 0 then sessions = sessions + 1 end
  for _, record in ipairs(records) do
    local nl, ilen, plen, rlen, nlen = header(record)
    checkpoints = checkpoints + 1
    bytes = bytes + #record - nl - ilen - plen - rlen - nlen
  end
  for _, name in ipairs(redis.call('SMEMBERS', base .. ':fields')) do
    for _, member in ipairs(redis.call('ZRANGE', base .. ':w:' .. name, 0, -1)) do
      writes = writes + 1
      bytes = bytes + #member - string.find(member, ':', string.find(member, ':', 1, true) + 1, true)
    end
  end
end
return {sessions, checkpoints, writes, bytes}
"""

_SCRIPTS = {
    "acquire": _ACQUIRE,
    "renew": _RENEW,
    "release": _RELEASE,
    "write": _WRITE,
    "read_head": _READ_HEAD,
    "read_writes": _READ_WRITES,
    "read_chain": _READ_CHAIN,
    "read_from": _READ_FROM,
    "delete": _DELETE,
    "delete_session": _DELETE_SESSION,
    "stats": _STATS,
}


@dataclass(frozen=True, slots=True)
class _Link:
    """A client (with its connection pool) and its scripts, bound to one event loop."""

    client: Redis
    scripts: dict[str, AsyncScript]


class RedisStore:
    """Sessions in Redis: one hash, two sorted sets and a zset per field per session (see above)."""

    backend_name = "Redis"

    def __init__(
        self, redis_url: str = "redis://localhost:6379/0", prefix: str = "flows:", ttl: float | None = None
    ) -> None:
        self.redis_url = redis_url
        self.safe_url = redact_url(redis_url)
        try:
            parse_url(redis_url)  # a malformed URL fails here, not at the first run
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL {self.safe_url!r}: {exc}") from None
        self.prefix = prefix
        self._fence = f"{prefix}fence"
        self._ttl_ms = 0 if ttl is None else _millis(ttl)
        # redis-py asyncio clients belong to the loop they were created on
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Link] = (
            weakref.WeakKeyDictionary()
        )
        self._links_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RedisStore {self.safe_url} prefix={self.prefix!r}>"

    # ------------------------------------------------------------------ connections

    def _link(self) -> _Link:
        loop = asyncio.get_running_loop()
        with self._links_lock:
            link = self._links.get(loop)
            if link is None:
                # a client keeps its loop alive, so dead loops must be dropped by hand
                for dead in [other for other in self._links if other.is_closed()]:
                    del self._links[dead]
                client = Redis.from_url(self.redis_url, socket_connect_timeout=5.0, **retry_options())
                scripts = {
                    name: client.register_script(_PRELUDE + source)
                    for name, source in _SCRIPTS.items()
                }
                link = self._links[loop] = _Link(client, scripts)
            return link

    async def _run(self, script: str, keys: list[str], args: Iterable[Any] = ()) -> Any:
        link = self._link()
        with self._unavailable():
            return await link.scripts[script](keys=keys, args=list(args))

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE as exc:
            raise CheckpointerUnavailable(
                f"{self.backend_name} checkpointer cannot use {self.safe_url}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def aclose(self) -> None:
        """Closes the connection pools: this loop's now, others' on their own loops."""
        with self._links_lock:
            links = list(self._links.items())
            self._links.clear()
        current = asyncio.get_running_loop()
        for loop, link in links:
            if loop is current:
                await link.client.aclose()
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(link.client.aclose(), loop)

    # ------------------------------------------------------------------ keys and records

    def _base(self, session_id: str) -> str:
        return f"{self.prefix}{{{session_id}}}"

    # ------------------------------------------------------------------ the Store protocol

    async def try_acquire(self, session_id: str, lease_seconds: float, take_over: bool = False) -> LeaseGrant | None:
        reply = await self._run(
            "acquire",
            [self._base(session_id), self._fence],
            [_millis(lease_seconds), self._ttl_ms, os.urandom(8).hex(), "1" if take_over else "0"],
        )
        if reply is None:
            return None
        token, head, last_seq = reply
        record = None if head is None else _unpack_record(session_id, head)
        return LeaseGrant(int(token), record, int(last_seq))

    async def renew(self, lease: Lease, lease_seconds: float) -> bool:
        args = [lease.token, _millis(lease_seconds), self._ttl_ms]
        return bool(await self._run("renew", [self._base(lease.session_id)], args))

    async def release(self, lease: Lease) -> None:
        await self._run("release", [self._base(lease.session_id)], [lease.token, self._ttl_ms])

    async def write(self, lease: Lease, record: StoredCheckpoint, writes: Sequence[StoredWrite]) -> None:
        args: list[Any] = [lease.token, self._ttl_ms, record.checkpoint_id, record.seq, _pack_record(record)]
        for write in writes:
            args += (write.field, _pack_write(write))
        if not await self._run("write", [self._base(lease.session_id)], args):
            raise lease_lost(lease)

    async def read_head(self, session_id: str) -> StoredCheckpoint | None:
        data = await self._run("read_head", [self._base(session_id)])
        return None if data is None else _unpack_record(session_id, data)

    async def read_checkpoint(self, session_id: str, checkpoint_id: str) -> StoredCheckpoint | None:
        link = self._link()
        with self._unavailable():
            # bytes: the client is made without decode_responses, which redis-py's types cannot follow
            data = cast("bytes | None", await link.client.hget(f"{self._base(session_id)}:cp", checkpoint_id))
        return None if data is None else _unpack_record(session_id, data)

    async def read_writes(
        self, session_id: str, ranges: Mapping[str, tuple[int, int]]
    ) -> list[StoredWrite]:
        if not ranges:
            return []
        args: list[Any] = []
        for name, (lo, hi) in ranges.items():
            args += (name, lo, hi, window_start(lo))
        replies = await self._run("read_writes", [self._base(session_id)], args)
        return [
            _unpack_write(name, member)
            for name, members in zip(ranges, replies, strict=True)  # the script returns one list per range
            for member in members
        ]

    async def read_chain(self, session_id: str, start: StoredCheckpoint, limit: int) -> list[StoredCheckpoint]:
        if limit <= 1 or start.parent_id is None:
            return [start]
        replies = await self._run("read_chain", [self._base(session_id)], [start.parent_id, limit - 1])
        return [start, *(_unpack_record(session_id, data) for data in replies)]

    async def read_records_from(self, session_id: str, min_seq: int) -> list[StoredCheckpoint]:
        replies = await self._run("read_from", [self._base(session_id)], [min_seq])
        return [_unpack_record(session_id, data) for data in replies]

    async def count(self, session_id: str) -> int:
        link = self._link()
        with self._unavailable():
            return int(await link.client.zcard(f"{self._base(session_id)}:seq"))

    async def delete_ids(
        self,
        lease: Lease,
        ids: Iterable[str],
        *,
        drop_writes: Iterable[WriteRange],
        head: StoredCheckpoint,
        add_writes: Sequence[StoredWrite] = (),
    ) -> None:
        await self._delete(lease, "drop", ids, drop_writes, head, add_writes)

    async def keep_only(
        self, lease: Lease, ids: Iterable[str], *, drop_writes: Iterable[WriteRange], head: StoredCheckpoint
    ) -> None:
        await self._delete(lease, "keep", ids, drop_writes, head, ())

    async def _delete(
        self,
        lease: Lease,
        mode: str,
        ids: Iterable[str],
        drop_writes: Iterable[WriteRange],
        head: StoredCheckpoint,
        add_writes: Sequence[StoredWrite],
    ) -> None:
        chosen = sorted(ids)
        ranges = list(drop_writes)
        args: list[Any] = [lease.token, self._ttl_ms, head.checkpoint_id, mode, len(chosen), *chosen, len(ranges)]
        for name, lo, hi in ranges:
            args += ("*" if name is None else f"={name}", lo, hi)
        for write in add_writes:
            args += (write.field, write.seq, _pack_write(write))
        if not await self._run("delete", [self._base(lease.session_id)], args):
            raise lease_lost(lease)

    async def delete_session(self, lease: Lease) -> None:
        if not await self._run("delete_session", [self._base(lease.session_id)], [lease.token]):
            raise lease_lost(lease)

    async def session_ids(self) -> list[str]:
        """Sessions with checkpoints, found by SCAN (expired ones are gone already)."""
        link = self._link()
        start, end = len(self.prefix) + 1, -len("}:cp")
        found: list[str] = []
        with self._unavailable():
            async for key in link.client.scan_iter(match=f"{_glob_escape(self.prefix)}{{*}}:cp", count=1000):
                session_id = key.decode()[start:end]
                if SESSION_ID_PATTERN.match(session_id):
                    found.append(session_id)
        return sorted(set(found))

    async def stats(self) -> dict[str, int]:
        bases = [self._base(session_id) for session_id in await self.session_ids()]
        totals = [0, 0, 0, 0]
        for at in range(0, len(bases), _STATS_BATCH):
            reply = await self._run("stats", bases[at : at + _STATS_BATCH])
            totals = [total + int(value) for total, value in zip(totals, reply, strict=True)]  # four counts each
        return dict(zip(("sessions", "checkpoints", "writes", "bytes"), totals, strict=True))


class RedisCheckpointer(Checkpointer):
    """Checkpoints in Redis, shared by every process and host using the same server.

    ``prefix`` namespaces every key; ``ttl`` (seconds) expires a session that has
    not been written for that long, all its keys together. Other options are
    :class:`Checkpointer`'s. The server URL may carry redis-py's query
    options (``socket_timeout``, ``ssl_cert_reqs``...); ``rediss://`` uses TLS.
    """

    store: RedisStore

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        prefix: str = "flows:",
        ttl: float | None = None,
        *,
        max_checkpoints_per_session: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            RedisStore(redis_url, prefix, ttl),
            max_checkpoints_per_session=max_checkpoints_per_session,
            ttl_seconds=ttl,
            **options,
        )
        self.redis_url, self.safe_url, self.prefix = redis_url, self.store.safe_url, prefix

    def __repr__(self) -> str:
        return f"<RedisCheckpointer {self.safe_url} prefix={self.prefix!r}>"


# --------------------------------------------------------------------------- helpers


def redact_url(url: str) -> str:
    """``url`` with its password (in the netloc or a ``password=`` query) masked."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(f"{parts.netloc}", f"{parts.username or ''}:***@{host}", 1)
    if "password" in parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        masked = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
        url = url.replace(f"?{parts.query}", f"?{masked}", 1)
    return url


def _millis(seconds: float) -> int:
    """Whole milliseconds, at least 1: 0 means "no TTL" to the scripts."""
    return max(1, math.ceil(seconds * 1000))


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "\\*?[]" else ch for ch in text)


def _pack_record(record: StoredCheckpoint) -> bytes:
    ident = record.checkpoint_id.encode()
    parent = (record.parent_id or "").encode()
    run = record.run_id.encode()
    node = b"" if record.node is None else record.node.encode()
    node_len = -1 if record.node is None else len(node)
    header = f"{record.seq} {record.created_at!r} {len(ident)} {len(parent)} {len(run)} {node_len}\n"
    return b"".join((header.encode(), ident, parent, run, node, record.blob))


def _unpack_record(session_id: str, data: bytes) -> StoredCheckpoint:
    newline = data.index(b"\n")
    seq, created, ident_len, parent_len, run_len, node_len = data[:newline].split(b" ")
    at = newline + 1
    pieces: list[bytes] = []
    for size in (int(ident_len), int(parent_len), int(run_len), max(int(node_len), 0)):
        pieces.append(data[at : at + size])
        at += size
    ident, parent, run, node = pieces
    return StoredCheckpoint(
        session_id=session_id,
        checkpoint_id=ident.decode(),
        seq=int(seq),
        parent_id=parent.decode() or None,
        created_at=float(created),
        run_id=run.decode(),
        node=None if int(node_len) < 0 else node.decode(),
        blob=data[at:],
    )


def _pack_write(write: StoredWrite) -> bytes:
    """A zset member: the seq keeps members unique when two writes hold equal bytes."""
    return b"%d:%s:" % (write.seq, _OPS[write.op]) + write.blob


def _unpack_write(name: str, member: bytes) -> StoredWrite:
    colon = member.index(b":")
    return StoredWrite(int(member[:colon]), name, _OP_NAMES[member[colon + 1]], member[colon + 3 :])
