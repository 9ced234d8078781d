"""``interrupt(value)``: a node asks a question and the run pauses until it is answered."""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any


class Interrupted(BaseException):
    """Raised inside a node by :func:`interrupt` to pause the run.

    A ``BaseException`` so that a node's own ``except Exception`` cannot swallow it.
    """

    def __init__(self, value: Any, index: int) -> None:
        super().__init__(value)
        self.value = value
        self.index = index


@dataclass
class TaskScope:
    """What ``interrupt()`` needs to know about the running task."""

    answers: list[Any] = field(default_factory=list)
    calls: int = 0


_scope: ContextVar[TaskScope | None] = ContextVar("flows_task_scope", default=None)


def interrupt(value: Any = None) -> Any:
    """Pauses the run with ``value`` as the question, or returns the answer once resumed.

    The node runs again from its start on resume; its n-th ``interrupt()`` call
    returns the n-th answer given with ``invoke(None, session_id=..., resume=answer)``.
    """
    scope = _scope.get()
    if scope is None:
        raise RuntimeError("interrupt() can only be called inside a running node")
    index = scope.calls
    scope.calls += 1
    if index < len(scope.answers):
        return scope.answers[index]
    raise Interrupted(value, index)


def enter(scope: TaskScope) -> Token[TaskScope | None]:
    return _scope.set(scope)


def leave(token: Token[TaskScope | None]) -> None:
    _scope.reset(token)
