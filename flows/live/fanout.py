"""Sending a run's events to every watcher of its session, in any process.

With a channel layer that crosses processes (channels-redis), each batch of a
run's events is sent to the session's group as it is written
(:mod:`flows.runs.recorder` calls :func:`publish`). The in-memory layer does
not cross processes — a task worker's runs would never reach a socket served
by the web process — so with it, watchers follow the durable event log
instead (:func:`crosses_processes` tells which).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer

try:
    from redis.exceptions import RedisError
except ImportError:  # no Redis, no Redis errors
    RedisError = OSError  # type: ignore[assignment,misc]

logger = logging.getLogger("flows.live")

MESSAGE_TYPE = "flows.events"


def group_name(flow_name: str, session_id: str) -> str:
    """A channel group name for the session (group names allow ``[A-Za-z0-9_.-]``, under 100 characters)."""
    digest = hashlib.sha256(f"{flow_name}\0{session_id}".encode()).hexdigest()[:40]
    return f"flows.session.{digest}"


def crosses_processes() -> bool:
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


async def publish(flow_name: str, session_id: str, run_id: str, events: list[tuple[int, str, str]]) -> None:
    """Sends a batch of a run's stored events ``(id, event, JSON)`` to the session's watchers."""
    layer = get_channel_layer()
    if layer is None or not events:
        return
    message: dict[str, Any] = {"type": MESSAGE_TYPE, "run_id": run_id, "events": events}
    try:
        await layer.group_send(group_name(flow_name, session_id), message)
    except (OSError, ChannelFull, RedisError):  # the log holds the events: a watcher can re-read it
        logger.warning("could not send events of run %s to the watchers of %s/%s", run_id, flow_name, session_id,
                       exc_info=True)
