"""Exceptions raised by the engine and its checkpointers.

Every error carries a stable ``code`` so that API layers can map it to a status
without parsing messages.
"""

from __future__ import annotations


class FlowError(Exception):
    """Base class of every error raised by ``flows.engine``."""

    code = "flow_error"


class GraphValidationError(FlowError, ValueError):
    """The graph is malformed (unknown node, unreachable node, bad reducer...)."""

    code = "invalid_graph"


class InvalidSessionId(FlowError, ValueError):
    code = "invalid_session_id"


class InvalidInput(FlowError, ValueError):
    """A call's arguments are wrong (unknown state field, a value the schema or a
    reducer rejects, resume with nothing pending...).

    ``fields`` maps each offending state field to what is wrong with it (empty
    when the problem is not one field's).
    """

    code = "invalid_input"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = dict(fields or {})


class NothingToResume(InvalidInput):
    """``resume`` was given but no question is pending on the session."""

    code = "nothing_to_resume"


class CheckpointNotFound(FlowError, LookupError):
    code = "checkpoint_not_found"


class MaxStepsExceeded(FlowError, RuntimeError):
    code = "max_steps_exceeded"


class NodeError(FlowError, RuntimeError):
    """A node failed on its final attempt; the original exception is ``__cause__``."""

    code = "node_failed"

    def __init__(self, node: str, attempt: int, attempts: int, error: BaseException) -> None:
        self.node = node
        self.attempt = attempt
        self.attempts = attempts
        self.error = error
        super().__init__(
            f"node {node!r} failed on attempt {attempt}/{attempts}: "
            f"{type(error).__name__}: {error}"
        )


class RouteError(FlowError, RuntimeError):
    """The condition after a node failed; the original exception is ``__cause__``."""

    code = "route_failed"

    def __init__(self, node: str, error: BaseException) -> None:
        self.node = node
        self.error = error
        super().__init__(f"the condition after node {node!r} failed: {type(error).__name__}: {error}")
        self.__cause__ = error


class NodeTimeout(FlowError, TimeoutError):
    code = "node_timeout"


class SessionBusy(FlowError, RuntimeError):
    """Another call holds the session (``on_busy="reject"``, or the wait timed out)."""

    code = "session_busy"


class RunSuperseded(FlowError, RuntimeError):
    """A newer call took the session over (``on_busy="interrupt"`` or ``"rollback"``); this run stopped."""

    code = "run_superseded"


class LeaseLost(FlowError, RuntimeError):
    """This worker's lease on the session was taken over; its write was refused (fencing)."""

    code = "lease_lost"


class SerializationError(FlowError, TypeError):
    code = "serialization_error"


class ReadOnlyValue(FlowError, TypeError):
    """Something changed in place an item read from a checkpoint that is shared, not copied.

    Items of an appending field (``Annotated[list, operator.add]``) are handed out
    read-only: the field only ever grows, so an item changed in place would never
    be saved, and sharing them spares a copy of the whole history on every turn.
    """

    code = "read_only_value"


class StateTooLarge(FlowError, ValueError):
    code = "state_too_large"


class CheckpointerUnavailable(FlowError, ConnectionError):
    """The checkpointer's server cannot be reached; the message names it without secrets."""

    code = "checkpointer_unavailable"
