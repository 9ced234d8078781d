"""``ws/flows/{flow}/sessions/{session_id}/``: run a session and watch every run on it, live.

The client sends JSON messages:

* ``{"type": "invoke", "input", "resume", "checkpoint_id", "on_busy"}`` runs the
  flow in this process, as ``POST …/invoke/`` does;
* ``{"type": "run", ...}`` (same fields) starts a background run, as
  ``POST …/runs/`` does;
* ``{"type": "cancel", "run_id", "action"}`` stops a run (``cancel`` or ``rollback``).

It receives, in order: ``{"type": "state", ...}`` (the session as it stands),
the events so far of a run that is going on, then ``{"type": "event",
"run_id", "id", "event": {...}}`` for every event of every run on the session,
wherever it was started. Answers to its own messages are ``{"type":
"accepted", ...}``; anything wrong is ``{"type": "error", "code", "detail"}``,
and the socket stays open. A socket that may not reach the session is
closed with 4401 (not signed in) or 4403 (not allowed); one on a flow that
is not registered with 4404, on an invalid session id with 4400.

Connecting to a session id never seen makes the session, the caller's (as a
first invoke does): nobody else's run can then appear on this socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from flows import registry, sessions
from flows.api import shapes
from flows.api.errors import as_api_error, error_body
from flows.checkpointer import run_in_orm_thread
from flows.conf import flows_settings
from flows.engine import FlowError
from flows.engine.ids import validate_session_id
from flows.events import dumps
from flows.runs import follow, starting
from flows.runs.recorder import current_origin

from . import fanout
from .actions import SocketActions

logger = logging.getLogger("flows.live")

#: Close codes: not signed in / may not reach this session / no such flow / not a session id.
UNAUTHENTICATED, FORBIDDEN, UNKNOWN_FLOW, INVALID_SESSION_ID = 4401, 4403, 4404, 4400


class SessionConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        route = self.scope["url_route"]["kwargs"]
        self.flow_name, self.session_id = route["flow"], route["session_id"]
        self.user = self.scope.get("user")
        self.tasks: set[asyncio.Task[Any]] = set()
        self.seen: dict[str, int] = {}  # run id -> the last event id sent
        subprotocol = self.scope.get("flows_subprotocol")  # set by TokenAuthMiddleware
        await self.accept(subprotocol if isinstance(subprotocol, str) else None)
        refusal = await self.refusal()
        if refusal is not None:
            await self.close(code=refusal)
            return
        self.actions = SocketActions(self.flow_name, self.engine, self.session_id, self.user)
        self.group = None
        if fanout.crosses_processes():  # live from the group, from now on
            self.group = fanout.group_name(self.flow_name, self.session_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
        else:  # live from the log, from where it is now
            after = await follow.newest_session_event(self.flow_name, self.session_id)
        await self.send_state_and_runs_so_far()
        if self.group is None:
            self.spawn(self.follow_the_log(after))

    async def refusal(self) -> int | None:
        """Why this socket may not watch the session (a close code), or ``None``."""
        user = self.user
        if not flows_settings.ANONYMOUS and not (user is not None and user.is_authenticated):
            return UNAUTHENTICATED
        try:
            self.engine = registry.get_flow(self.flow_name)
        except registry.FlowNotFound:
            return UNKNOWN_FLOW
        try:
            validate_session_id(self.session_id)
        except FlowError:
            return INVALID_SESSION_ID
        try:  # a new session is the caller's; one only its store knows is staff's
            await starting.claim_session(self.flow_name, self.engine, self.session_id, user, {})
        except sessions.SessionNotFound:
            return FORBIDDEN
        return None

    async def disconnect(self, code: int) -> None:
        for task in list(getattr(self, "tasks", ())):
            task.cancel()
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    def spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a socket task failed", exc_info=task.exception())

    # -- what it sends ------------------------------------------------------------------------

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=dumps(message))

    async def send_state_and_runs_so_far(self) -> None:
        checkpoint = await self.engine.get_checkpoint(self.session_id)
        row = await sessions.aget(self.flow_name, self.session_id)
        head = checkpoint.metadata if checkpoint is not None else None
        await self.send_json({"type": "state", **shapes.state_data(checkpoint),
                              "status": sessions.session_status(row.status if row else None, head)})
        going = await run_in_orm_thread(self._runs_going_on)
        for pk, run_id in going:
            async for stored in follow.follow_run(pk, self.run_key(run_id), 0, idle=0.0):
                if stored is None:  # caught up with what is written so far
                    break
                await self.send_event(run_id, stored.id, stored.data)

    def run_key(self, run_id: str) -> follow.RunKey:
        return follow.RunKey(self.flow_name, self.session_id, run_id)

    def _runs_going_on(self) -> list[tuple[int, str]]:
        from flows.models import Run

        return list(Run.objects.filter(flow_name=self.flow_name, session_id=self.session_id, status="running")
                    .order_by("pk").values_list("pk", "run_id"))

    async def send_event(self, run_id: str, event_id: int, data: str) -> None:
        """Sends a run's event once, in order: what came before it and was missed is read from the log first.

        (A batch published just before this socket joined the group, or one the
        channel layer dropped, is a gap; every run a socket shows starts at 1.)
        """
        seen = self.seen.get(run_id, 0)
        if event_id <= seen:
            return  # sent already (from the log, or from the group)
        if event_id > seen + 1:
            for missed in await follow.events_between(self.run_key(run_id), seen, event_id):
                await self._send_event(run_id, missed.id, missed.data)
        await self._send_event(run_id, event_id, data)

    async def _send_event(self, run_id: str, event_id: int, data: str) -> None:
        self.seen[run_id] = event_id
        await self.send(text_data=f'{{"type":"event","run_id":{json.dumps(run_id)},"id":{event_id},"event":{data}}}')

    async def follow_the_log(self, after: int) -> None:
        """Without a channel layer that crosses processes: the session's runs, from the durable log."""
        async for stored in follow.follow_session(self.flow_name, self.session_id, after):
            if stored is not None:
                await self.send_event(stored.run_id, stored.seq, stored.data)

    async def flows_events(self, message: dict[str, Any]) -> None:
        """A batch of a run's events from the channel layer (:mod:`.fanout`)."""
        for event_id, _kind, data in message["events"]:
            await self.send_event(message["run_id"], event_id, data)

    # -- what it receives ------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data if text_data is not None else (bytes_data or b"").decode())
        except (ValueError, UnicodeDecodeError) as error:
            await self.send_error("parse_error", f"a message is a JSON object: {error}")
            return
        if not isinstance(message, dict) or message.get("type") not in ("invoke", "run", "cancel"):
            await self.send_error("invalid", 'a message is {"type": "invoke" | "run" | "cancel", ...}')
            return
        self.spawn(self.act(message))

    async def act(self, message: dict[str, Any]) -> None:
        token = current_origin.set("websocket")
        try:
            answer = await self.actions.handle(message)
        except Exception as error:  # every refusal becomes an error message; a bug is logged too
            api_error = as_api_error(error)
            if api_error is None:
                logger.exception("a socket message failed")
                await self.send_error("server_error", "internal server error")
            else:
                await self.send_json({"type": "error", **error_body(api_error)})
            return
        finally:
            current_origin.reset(token)
        await self.send_json({"type": "accepted", **answer})

    async def send_error(self, code: str, detail: str) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail})

