"""The JSON shapes the API answers with (described for OpenAPI in :mod:`.serializers`)."""

from __future__ import annotations

import operator
import typing
from typing import TYPE_CHECKING, Any

from flows import registry
from flows.engine import FlowEngine
from flows.engine.checkpointers import Checkpoint, CheckpointMetadata
from flows.sessions import session_status

if TYPE_CHECKING:
    from flows.base_models import AbstractFlowSession


def type_name(annotation: Any) -> str:
    """An annotation as written in Python: ``int``, ``list[str]``, ``str | None``."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def reducer_name(reducer: Any) -> str | None:
    if reducer is None:
        return None
    if reducer is operator.add:
        return "operator.add"
    return getattr(reducer, "__qualname__", None) or repr(reducer)


def flow_data(name: str, engine: FlowEngine) -> dict[str, Any]:
    return {
        "name": name,
        "description": registry.flow_description(name),
        "nodes": list(engine.nodes),
        "edges": [
            {"source": e.source, "target": e.target, "conditional": e.conditional, "label": e.label}
            for e in engine.edges()
        ],
        "mermaid": engine.to_mermaid(),
        "state_fields": [
            {"name": f.name, "type": type_name(f.annotation), "reducer": reducer_name(f.reducer)}
            for f in engine.field_specs()
        ],
    }


def questions(meta: CheckpointMetadata | None) -> list[dict[str, Any]]:
    return [dict(q) for q in meta.interrupt] if meta is not None else []


def session_summary(row: AbstractFlowSession) -> dict[str, Any]:
    return {
        "flow": row.flow_name,
        "session_id": row.session_id,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def session_data(flow_name: str, session_id: str, row: AbstractFlowSession | None,
                 head: CheckpointMetadata | None) -> dict[str, Any]:
    """A session in full; ``row`` is ``None`` for one its store knows but the site never recorded."""
    recorded = row.status if row is not None else None
    created = row.created_at if row is not None else (head.created_at if head else None)
    updated = row.updated_at if row is not None else (head.created_at if head else None)
    return {
        "flow": flow_name,
        "session_id": session_id,
        "status": session_status(recorded, head),
        "created_at": created,
        "updated_at": updated,
        "next": list(head.next) if head else [],
        "interrupts": questions(head),
        "checkpoint_id": head.checkpoint_id if head else None,
        "last_error": (row.last_error if row is not None else "") if recorded == "failed" else "",
    }


def state_data(checkpoint: Checkpoint | None) -> dict[str, Any]:
    if checkpoint is None:
        return {"state": {}, "checkpoint_id": None, "run_id": None, "step": None, "next": [], "interrupts": []}
    meta = checkpoint.metadata
    return {
        "state": checkpoint.state,
        "checkpoint_id": meta.checkpoint_id,
        "run_id": meta.run_id,
        "step": meta.step,
        "next": list(meta.next),
        "interrupts": questions(meta),
    }


def checkpoint_summary(meta: CheckpointMetadata) -> dict[str, Any]:
    return {
        "checkpoint_id": meta.checkpoint_id,
        "parent_id": meta.parent_id,
        "run_id": meta.run_id,
        "node": meta.node,
        "step": meta.step,
        "created_at": meta.created_at,
        "updated_fields": list(meta.updated_fields),
        "next": list(meta.next),
        "interrupts": questions(meta),
    }


def checkpoint_data(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        **checkpoint_summary(checkpoint.metadata),
        "state": checkpoint.state,
        "changes": {name: {"op": c.op, "value": c.value} for name, c in checkpoint.changes.items()},
    }


def forks(metas: list[CheckpointMetadata]) -> list[dict[str, Any]]:
    """Where the session branched: each checkpoint with two or more children, oldest first.

    Each child comes with its branch's ``tip``, the newest checkpoint below
    it (what a client shows when switching to that branch). ``metas`` is the
    whole session, oldest first, so a parent comes before its children.
    """
    children: dict[str, list[CheckpointMetadata]] = {}
    for meta in metas:
        if meta.parent_id is not None:
            children.setdefault(meta.parent_id, []).append(meta)
    tip = {meta.checkpoint_id: meta for meta in metas}
    seq = {meta.checkpoint_id: meta.seq for meta in metas}
    for meta in reversed(metas):  # children first: each carries up the newest checkpoint below it
        for child in children.get(meta.checkpoint_id, ()):
            if tip[child.checkpoint_id].seq > tip[meta.checkpoint_id].seq:
                tip[meta.checkpoint_id] = tip[child.checkpoint_id]
    return [
        {"checkpoint_id": parent, "children": [
            {"checkpoint_id": child.checkpoint_id, "node": child.node, "created_at": child.created_at,
             "updated_fields": list(child.updated_fields), "tip": tip[child.checkpoint_id].checkpoint_id}
            for child in kids
        ]}
        for parent, kids in sorted(children.items(), key=lambda item: seq.get(item[0], -1)) if len(kids) > 1
    ]
