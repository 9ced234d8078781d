"""What a socket's messages do: start a run here or in the background, or stop one."""

from __future__ import annotations

from typing import Any

from flows.api.errors import from_invalid_input, invalid, not_found
from flows.api.serializers import RunCancelRequest, RunRequest, validated
from flows.checkpointer import run_in_orm_thread
from flows.engine import FlowEngine, InvalidInput
from flows.runs import starting
from flows.runs.stopping import mark_stop


class SocketActions:
    """The actions of one socket on one session, as its user."""

    def __init__(self, flow_name: str, engine: FlowEngine, session_id: str, user: Any) -> None:
        self.flow_name, self.engine, self.session_id, self.user = flow_name, engine, session_id, user

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Does what ``message`` asks; returns the answer (its run's id); raises what refuses it."""
        kind = message["type"]
        fields = {key: value for key, value in message.items() if key != "type"}
        if kind == "cancel":
            return await self.cancel(fields)
        data = validated(RunRequest, fields)
        try:
            apply_state = self.engine.input_from_json(data["input"]) if data.get("input") is not None else None
        except InvalidInput as error:
            raise from_invalid_input(error, "input") from error
        await starting.claim_session(self.flow_name, self.engine, self.session_id, self.user,
                                     starting.call_options(data))
        if kind == "run":
            run_id = await run_in_orm_thread(starting.start_in_background, self.flow_name, self.session_id,
                                             self.user, data, apply_state)
            return {"action": "run", "run_id": run_id}
        run = await starting.start_here(self.engine, self.flow_name, self.session_id, self.user, data, apply_state,
                                        origin="websocket")
        await run.next()  # the run began (or what refused it is raised); its events go to every watcher
        run.stop_reading()
        return {"action": "invoke", "run_id": run.run_id}

    async def cancel(self, fields: dict[str, Any]) -> dict[str, Any]:
        run_id = fields.pop("run_id", None)
        if not isinstance(run_id, str) or not run_id:
            raise invalid("cancel needs the run_id of a run on this session", fields={"run_id": ["required"]})
        action = validated(RunCancelRequest, fields).get("action") or "cancel"

        def stop() -> bool | None:
            from flows.models import Run

            if not Run.objects.filter(run_id=run_id, flow_name=self.flow_name, session_id=self.session_id).exists():
                return None
            return mark_stop(run_id, action)

        stopping = await run_in_orm_thread(stop)
        if stopping is None:
            raise not_found("run", f"no run {run_id!r} on session {self.session_id!r}")
        return {"action": action, "run_id": run_id, "stopping": stopping}
