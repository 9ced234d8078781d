"""The workflow engine: pure Python and asyncio, no Django.

::

    from flows.engine import FlowEngine, START, END
    from flows.engine.checkpointers import InMemoryCheckpointer
"""

from .errors import (
    CheckpointNotFound,
    FlowError,
    GraphValidationError,
    InvalidInput,
    InvalidSessionId,
    LeaseLost,
    MaxStepsExceeded,
    NodeError,
    NodeTimeout,
    NothingToResume,
    ReadOnlyValue,
    RouteError,
    RunSuperseded,
    SessionBusy,
    StateTooLarge,
)
from .flow import FlowEngine
from .hooks import FlowEngineHooks
from .interrupts import interrupt
from .primitives import END, START, Send
from .reducers import append
from .retry import RetryPolicy
from .sync import run_sync

__all__ = [
    "END",
    "START",
    "CheckpointNotFound",
    "FlowEngine",
    "FlowEngineHooks",
    "FlowError",
    "GraphValidationError",
    "InvalidInput",
    "InvalidSessionId",
    "LeaseLost",
    "MaxStepsExceeded",
    "NodeError",
    "NodeTimeout",
    "NothingToResume",
    "ReadOnlyValue",
    "RetryPolicy",
    "RouteError",
    "RunSuperseded",
    "Send",
    "SessionBusy",
    "StateTooLarge",
    "append",
    "interrupt",
    "run_sync",
]
