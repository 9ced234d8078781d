"""Runs' events in Redis streams, when ``FLOWS["EVENTS_REDIS_URL"]`` is set.

The ``Run`` rows stay in the database (status, heartbeat, stop requests, and
the fence that decides who may write a run); only the events move. Each
batch is appended right after the recorder's transaction commits, by one Lua
script, to two streams:

* the run's, entry ids ``0-<event id>``: a retried batch is not written
  twice, and a follower resumes after any id with ``XREAD``;
* the session's, entry ids ``0-<n>`` from a counter, for the session's
  watchers, capped at ``EVENTS_REDIS_SESSION_MAXLEN`` entries.

Every write refreshes the keys' expiry to ``EVENTS_TTL_SECONDS``. A follower
blocks in ``XREAD`` (no polling) and stops after the run's last event; when
Redis lost a batch it still stops, once the row says the run ended.

Writes go through a blocking client (they run on the ORM thread pool, next
to the transaction); followers use an asyncio client per event loop. Both
retry a command whose connection failed, as the checkpointer does
(:mod:`flows.engine.checkpointers.redis_retry`). A retried append after a
lost reply is harmless: the run stream's last entry id says which events are
already there, and those are skipped (the replay then returns 0); reads are
only reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from flows.conf import flows_settings

#: the events a run ends with
LAST_EVENTS = ("run_finished", "interrupted", "run_failed")
#: how long a follower blocks in XREAD before it looks at the run's row
BLOCK_SECONDS = 1.0
BATCH = 500

# KEYS: run stream, session stream, session counter.
# ARGV: ttl seconds, session maxlen, run id, then (event id, event, JSON) per event.
# -> the number of events written (a retried one is skipped).
_APPEND = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if top[1] then last = tonumber(string.match(top[1][1], '%-(%d+)$')) end
local added = 0
for i = 4, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[1], '0-' .. seq, 'e', ARGV[i + 1], 'd', ARGV[i + 2])
    local n = redis.call('INCR', KEYS[3])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. n,
               'r', ARGV[3], 's', seq, 'e', ARGV[i + 1], 'd', ARGV[i + 2])
    last = seq
    added = added + 1
  end
end
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ARGV[1]) end
return added
"""


class RunKey(NamedTuple):
    """What names a run's stream: its session (the hash slot) and its id."""

    flow_name: str
    session_id: str
    run_id: str


def enabled() -> bool:
    return bool(flows_settings.EVENTS_REDIS_URL)


def _session_tag(flow_name: str, session_id: str) -> str:
    """``{digest}``: every key of a session in one Redis Cluster slot, whatever its id holds."""
    return "{" + hashlib.sha256(f"{flow_name}\0{session_id}".encode()).hexdigest()[:40] + "}"


def run_stream(key: RunKey) -> str:
    return f"{flows_settings.EVENTS_REDIS_PREFIX}{_session_tag(key.flow_name, key.session_id)}:run:{key.run_id}"


def session_stream(flow_name: str, session_id: str) -> str:
    return f"{flows_settings.EVENTS_REDIS_PREFIX}{_session_tag(flow_name, session_id)}:session"


def _counter(flow_name: str, session_id: str) -> str:
    return f"{flows_settings.EVENTS_REDIS_PREFIX}{_session_tag(flow_name, session_id)}:n"


# -- writing (blocking) ---------------------------------------------------------------------------

_sync_clients: dict[str, Any] = {}


def _sync_client() -> Any:
    import redis

    from flows.engine.checkpointers.redis_retry import retry_options

    url = flows_settings.EVENTS_REDIS_URL
    client = _sync_clients.get(url)
    if client is None:  # redis-py's pool is thread-safe and starts afresh in a forked child
        client = _sync_clients[url] = redis.Redis.from_url(url, **retry_options(blocking=True))
    return client


def append(key: RunKey, batch: list[tuple[int, str, str]]) -> int:
    """Appends a batch ``(event id, event, JSON)`` to the run's and the session's streams."""
    args: list[Any] = [int(flows_settings.EVENTS_TTL_SECONDS), int(flows_settings.EVENTS_REDIS_SESSION_MAXLEN),
                       key.run_id]
    for seq, kind, data in batch:
        args += (seq, kind, data)
    keys = [run_stream(key), session_stream(key.flow_name, key.session_id), _counter(key.flow_name, key.session_id)]
    return int(_sync_client().eval(_APPEND, len(keys), *keys, *args))


# -- reading -------------------------------------------------------------------------------------

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def _client() -> Any:
    """The asyncio client of the running loop (a client's connections belong to one loop)."""
    import redis.asyncio

    from flows.engine.checkpointers.redis_retry import retry_options

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = redis.asyncio.Redis.from_url(flows_settings.EVENTS_REDIS_URL, **retry_options())
    return client


def _seq(entry_id: bytes) -> int:
    return int(entry_id.rsplit(b"-", 1)[1])


def _text(value: bytes) -> str:
    return value.decode()


async def read_run(key: RunKey, after: int, before: int | None = None) -> list[tuple[int, str, str]]:
    """The run's stored events with ``after < id`` (and ``< before``), at most :data:`BATCH`."""
    if before is not None and before <= after + 1:
        return []
    upper = f"0-{before - 1}" if before is not None else "+"
    entries = await _client().xrange(run_stream(key), f"0-{after + 1}", upper, count=BATCH)
    return [(_seq(entry_id), _text(fields[b"e"]), _text(fields[b"d"])) for entry_id, fields in entries]


async def wait_for_run(key: RunKey, after: int, seconds: float) -> list[tuple[int, str, str]]:
    """The run's events after ``after``, waiting up to ``seconds`` for one to be written."""
    reply = await _client().xread({run_stream(key): f"0-{after}"}, count=BATCH, block=max(1, int(seconds * 1000)))
    if not reply:
        return []
    return [(_seq(entry_id), _text(fields[b"e"]), _text(fields[b"d"])) for entry_id, fields in reply[0][1]]


async def newest_in_session(flow_name: str, session_id: str) -> int:
    value = await _client().get(_counter(flow_name, session_id))
    return int(value or 0)


async def wait_for_session(flow_name: str, session_id: str, after: int,
                           seconds: float) -> list[tuple[int, str, str, str, int]]:
    """The session's events after ``after``: ``(n, event, JSON, run id, event id)``, waiting up to ``seconds``."""
    reply = await _client().xread({session_stream(flow_name, session_id): f"0-{after}"}, count=BATCH,
                                  block=max(1, int(seconds * 1000)))
    if not reply:
        return []
    return [(_seq(entry_id), _text(fields[b"e"]), _text(fields[b"d"]), _text(fields[b"r"]), int(fields[b"s"]))
            for entry_id, fields in reply[0][1]]


async def follow_run_stream(key: RunKey, after: int, *, idle: float | None,
                            ended: Any) -> AsyncIterator[tuple[int, str, str] | None]:
    """The run's events after ``after``, then each new one, until its last event.

    ``ended()`` (awaited after a silent :data:`BLOCK_SECONDS`) tells whether
    the row says the run is over: then it stops even if its last event never
    reached Redis. ``idle`` as in :func:`flows.runs.follow.follow_run`; with
    ``idle=0`` a ``None`` marks "caught up" and nothing blocks.
    """
    quiet = 0.0
    while True:
        if idle == 0.0:
            rows = await read_run(key, after)
        else:
            wait = BLOCK_SECONDS if idle is None else min(BLOCK_SECONDS, max(idle - quiet, 0.001))
            rows = await wait_for_run(key, after, wait)
        for row in rows:
            yield row
            after = row[0]
        if rows:
            quiet = 0.0
            if rows[-1][1] in LAST_EVENTS:  # what follows it, if anything, is read once more
                for row in await read_run(key, after):
                    yield row
                return
            continue
        if idle == 0.0:
            yield None
            return
        quiet += wait
        if idle is not None and quiet >= idle:
            quiet = 0.0
            yield None
        if await ended() and not await read_run(key, after):
            return
