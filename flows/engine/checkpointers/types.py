"""The checkpoint records: what callers see, and what a store persists."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class _Factory:
    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()  # a field's default made by its default_factory, as dataclasses shows it


def _quick_init(cls: Any) -> Any:
    """Gives a frozen slots dataclass an ``__init__`` that fills each slot through its
    descriptor: the same signature, defaults and result as the generated one.

    The generated ``__init__`` of a frozen dataclass goes through
    ``object.__setattr__`` for every field: for the 19 of
    :class:`CheckpointMetadata`, made on every step, that is most of a
    microsecond and a half more than filling the slots directly. The instance
    stays frozen (assigning a field still raises ``FrozenInstanceError``).
    """
    fields = dataclasses.fields(cls)
    params, body = [], []
    env: dict[str, Any] = {"_MISSING": _FACTORY}
    for f in fields:
        env[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        value = f.name
        if f.default is not dataclasses.MISSING:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            value = f"_factory_{f.name}() if {f.name} is _MISSING else {f.name}"
        else:
            params.append(f.name)
        body.append(f"    _set_{f.name}(self, {value})")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body), env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls


SET = "set"
EXTEND = "extend"
#: a run of one field's consecutive ``extend`` writes stored as one (see :mod:`.delta`)
CHUNK = "chunk"


class Change(NamedTuple):
    """One field's write in a checkpoint: ``set`` replaces, ``extend`` appends to a list or string."""

    op: str
    value: Any


@_quick_init
@dataclass(frozen=True, slots=True)
class CheckpointMetadata:
    """Everything known about one checkpoint except the state it stands for.

    ``next`` names the nodes still to run in the checkpoint's run (empty once the
    run reached END); ``interrupt`` lists the questions pending at it. ``seq``,
    ``depth``, ``origin``, ``bases``, ``sizes`` and ``schedule`` are storage and
    scheduling bookkeeping that the engine and the checkpointers share:
    ``origin`` is the id of the session's first checkpoint, so it changes when
    a session is reset and started again.
    """

    checkpoint_id: str
    session_id: str
    run_id: str
    parent_id: str | None
    created_at: dt.datetime
    node: str | None
    prev_node: str | None
    step: int
    updated_fields: tuple[str, ...]
    attempt: int
    dispatch_id: str | None
    next: tuple[str, ...]
    interrupt: tuple[dict[str, Any], ...]
    seq: int
    depth: int
    origin: str
    bases: Mapping[str, int]
    sizes: Mapping[str, int]
    schedule: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return not self.next and not self.interrupt

    def to_dict(self) -> dict[str, Any]:
        """The public metadata as JSON-friendly data (for APIs and admin pages)."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "session_id": self.session_id,
            "run_id": self.run_id,
            "parent_id": self.parent_id,
            "created_at": self.created_at.isoformat(),
            "node": self.node,
            "prev_node": self.prev_node,
            "step": self.step,
            "updated_fields": list(self.updated_fields),
            "attempt": self.attempt,
            "dispatch_id": self.dispatch_id,
            "next": list(self.next),
            "interrupt": [dict(i) for i in self.interrupt],
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint with the full state it stands for and what it changed."""

    metadata: CheckpointMetadata
    state: dict[str, Any]
    changes: Mapping[str, Change]

    @property
    def checkpoint_id(self) -> str:
        return self.metadata.checkpoint_id


@_quick_init
@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint row as a store keeps it: indexed columns plus the encoded metadata."""

    session_id: str
    checkpoint_id: str
    seq: int
    parent_id: str | None
    created_at: float
    run_id: str
    node: str | None
    blob: bytes
    #: "idle", "running" or "interrupted" when written (stores may index it; "" when not kept)
    status: str = ""


@_quick_init
@dataclass(frozen=True, slots=True)
class StoredWrite:
    """One field write: ``seq`` is the writing checkpoint's position in its session."""

    seq: int
    field: str
    op: str
    blob: bytes


@dataclass(slots=True)
class Lease:
    """A held session lock. ``token`` fences writes: a store refuses a stale one.

    ``head`` and ``last_seq`` track the session as this holder sees it; only the
    holder writes, so they stay exact while the lease is held.
    """

    session_id: str
    token: int
    head: StoredCheckpoint | None
    last_seq: int
    lost: bool = False
    #: a newer call took the session over (``on_busy="interrupt"`` / ``"rollback"``)
    superseded: bool = False


class LeaseGrant(NamedTuple):
    """What a store returns when a session lock is taken."""

    token: int
    head: StoredCheckpoint | None
    last_seq: int


class PreparedPut(NamedTuple):
    """A checkpoint encoded and given its seq, not written yet (``Checkpointer.prepare_put``)."""

    metadata: CheckpointMetadata
    record: StoredCheckpoint
    writes: list[StoredWrite]
