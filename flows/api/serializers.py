"""Request bodies (validated here) and response shapes (for the OpenAPI schema).

Responses are built as plain dicts by :mod:`flows.api.views` — states can be
large and go out as they are — and these serializers describe them for
drf-spectacular; schemathesis checks in the test suite that the two agree.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from flows.engine.ids import SESSION_ID_PATTERN

SESSION_ID_HELP = "1-255 characters from A-Z a-z 0-9 _ . : -"
SESSION_STATUSES = ["idle", "running", "interrupted", "failed"]
RUN_STATUSES = ["pending", "running", "interrupted", "succeeded", "failed", "cancelled"]
#: What a call does when another run is going on the session (``on_busy``).
STRATEGIES = ["wait", "reject", "interrupt", "rollback"]


@extend_schema_field({"type": "object", "additionalProperties": True})
class _State(serializers.JSONField):
    """A JSON object (the state of a flow, or updates to it)."""

    def to_internal_value(self, data: Any) -> Any:
        if data is not None and not isinstance(data, dict):
            raise serializers.ValidationError(f"must be a JSON object of state fields, not {_json_type(data)}")
        return data


class Text(serializers.CharField):
    """A JSON string, and only a string, as sent (DRF's ``CharField`` takes numbers and trims)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"must be a string, not {_json_type(data)}")
        return super().to_internal_value(data)


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


# -- requests -------------------------------------------------------------------------------


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """A request's data, validated; an unknown key is an error (a misspelt ``inputs`` must not run a turn)."""
    from .errors import invalid

    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object", code="body_not_an_object")
    serializer = serializer_class(data=data)
    unknown = sorted(set(data) - set(serializer.fields))
    if unknown:
        known = ", ".join(serializer.fields)
        raise invalid(f"unknown {'field' if len(unknown) == 1 else 'fields'} {', '.join(map(repr, unknown))}; "
                      f"the body takes {known}", fields={name: [f"unknown field; use {known}"] for name in unknown})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)



class SessionCreateRequest(serializers.Serializer):
    session_id = Text(
        required=False, max_length=255,
        validators=[RegexValidator(SESSION_ID_PATTERN, f"invalid session id: use {SESSION_ID_HELP}")],
        help_text=f"{SESSION_ID_HELP}; omitted: the server picks a random id (the safe default)",
    )


class InvokeRequest(serializers.Serializer):
    input = _State(required=False, allow_null=True,
                   help_text="state updates, merged through the flow's reducers; null or omitted: none")
    resume = serializers.JSONField(required=False, allow_null=True,
                                   help_text="the answer to the pending question (null or omitted: no answer)")
    checkpoint_id = Text(required=False, allow_null=True, allow_blank=True, max_length=64,
                                          help_text="continue from this earlier checkpoint (a fork); empty: the head")
    on_busy = serializers.ChoiceField(
        STRATEGIES, required=False,
        error_messages={"invalid_choice": f'"{{input}}" is not a strategy: use {", ".join(STRATEGIES)}'},
        help_text="another run is going: wait (in arrival order), reject (409), interrupt (stop it, keep its "
                  "work, run on top) or rollback (stop it, discard its work)",
    )


class RunRequest(InvokeRequest):
    """A background run takes what invoke takes."""


class RunCancelRequest(serializers.Serializer):
    action = serializers.ChoiceField(["cancel", "rollback"], required=False,
                                     help_text="cancel (default) keeps what the run checkpointed; rollback discards it")


class StateUpdateRequest(serializers.Serializer):
    values = _State(help_text="state updates, merged through the flow's reducers")
    as_node = Text(required=False, allow_null=True, max_length=255,
                                    help_text="count the update as this node's completion")


# -- responses ------------------------------------------------------------------------------


class Question(serializers.Serializer):
    id = serializers.CharField()
    node = serializers.CharField()
    value = serializers.JSONField(help_text="what the node asked (interrupt(value))")


class StateField(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="the annotation, as written in Python")
    reducer = serializers.CharField(allow_null=True, help_text="the reducer's name; null: updates replace")


class Edge(serializers.Serializer):
    # Fields named like attributes of Field and Serializer (source, label; data, fields below): DRF's
    # metaclass takes declared fields out of the class body, and the names are the JSON keys.
    source = serializers.CharField()  # type: ignore[assignment]
    target = serializers.CharField()
    conditional = serializers.BooleanField()
    label = serializers.CharField(  # type: ignore[assignment]  # a declared field (see Edge.source)
        allow_null=True, help_text="the condition's key for this target"
    )


class Flow(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    nodes = serializers.ListField(child=serializers.CharField())
    edges = Edge(many=True)
    mermaid = serializers.CharField(help_text="the graph as a Mermaid flowchart")
    state_fields = StateField(many=True)


class SessionSummary(serializers.Serializer):
    flow = serializers.CharField()
    session_id = serializers.CharField()
    status = serializers.ChoiceField(SESSION_STATUSES)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class Session(SessionSummary):
    next = serializers.ListField(child=serializers.CharField(), help_text="nodes still to run")
    interrupts = Question(many=True, help_text="questions pending")
    checkpoint_id = serializers.CharField(allow_null=True, help_text="the head checkpoint")
    last_error = serializers.CharField(allow_blank=True, help_text="the last failure, when status is failed")


class SessionPage(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SessionSummary(many=True)


class State(serializers.Serializer):
    state = serializers.DictField(child=serializers.JSONField())
    checkpoint_id = serializers.CharField(allow_null=True)
    run_id = serializers.CharField(allow_null=True, help_text="the run that wrote the checkpoint")
    step = serializers.IntegerField(allow_null=True, help_text="its step in that run, as in runs' events")
    next = serializers.ListField(child=serializers.CharField())
    interrupts = Question(many=True)


class InvokeResult(serializers.Serializer):
    state = serializers.DictField(child=serializers.JSONField())
    run_id = serializers.CharField()
    checkpoint_id = serializers.CharField(allow_null=True, help_text="the head checkpoint after the run")
    status = serializers.ChoiceField(SESSION_STATUSES, help_text="idle (the run finished) or interrupted")
    interrupts = Question(many=True)


class CheckpointSummary(serializers.Serializer):
    checkpoint_id = serializers.CharField()
    parent_id = serializers.CharField(allow_null=True)
    run_id = serializers.CharField()
    node = serializers.CharField(allow_null=True, help_text="what wrote it: a node, __start__, __input__...")
    step = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_fields = serializers.ListField(child=serializers.CharField())
    next = serializers.ListField(child=serializers.CharField())
    interrupts = Question(many=True)


class Run(serializers.Serializer):
    run_id = serializers.CharField()
    flow = serializers.CharField()
    session_id = serializers.CharField()
    status = serializers.ChoiceField(RUN_STATUSES)
    origin = serializers.CharField(help_text="how it was started: background, api, admin, command, websocket, other")
    on_busy = serializers.ChoiceField(STRATEGIES)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    engine_run_id = serializers.CharField(allow_null=True, help_text="the engine run it made or continued")
    checkpoint_id = serializers.CharField(allow_null=True, help_text="the head checkpoint it left")
    interrupts = Question(many=True)
    last_event_id = serializers.IntegerField(help_text="the id of its newest stored event")
    worker = serializers.CharField(allow_null=True, help_text="host:pid of the process executing it")


class RunWithState(Run):
    state = serializers.DictField(child=serializers.JSONField())


class RunPage(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = Run(many=True)


class Change(serializers.Serializer):
    op = serializers.ChoiceField(["set", "extend"])
    value = serializers.JSONField(help_text="the new value (set) or what was appended (extend)")


class Checkpoint(CheckpointSummary):
    state = serializers.DictField(child=serializers.JSONField())
    changes = serializers.DictField(child=Change())


class CheckpointPage(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CheckpointSummary(many=True)


class Branch(serializers.Serializer):
    checkpoint_id = serializers.CharField(help_text="the branch's first checkpoint (a child of the fork)")
    node = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_fields = serializers.ListField(child=serializers.CharField())
    tip = serializers.CharField(help_text="the newest checkpoint of the branch (its state is the branch's)")


class Fork(serializers.Serializer):
    checkpoint_id = serializers.CharField(help_text="the checkpoint the branches continue from")
    children = Branch(many=True, help_text="oldest first")


class ForkList(serializers.Serializer):
    results = Fork(many=True)


class ServerSentEvent(serializers.Serializer):
    """One event of ``text/event-stream``: ``data`` is the engine's event as JSON."""

    id = serializers.CharField(help_text="increasing within the stream")
    event = serializers.ChoiceField(["run_started", "node_started", "chunk", "node_finished", "interrupted",
                                     "run_finished", "run_failed"])
    data = serializers.CharField(  # type: ignore[assignment]  # a declared field (see Edge.source)
        help_text="the event as JSON: event, run_id, session_id, node, step, ..."
    )


class Error(serializers.Serializer):
    code = serializers.CharField(help_text="stable and machine-readable")
    detail = serializers.CharField()
    fields = serializers.DictField(  # type: ignore[assignment]  # a declared field (see Edge.source)
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="validation errors: field (a state field as input.<name>) -> messages",
    )


class RunError(Error):
    node = serializers.CharField(allow_null=True)
    error_type = serializers.CharField()
    session_status = serializers.ChoiceField(["failed"])
