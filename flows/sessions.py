"""The ``FlowSession`` row of each conversation, whatever store keeps its checkpoints.

The row carries what the site knows about a session: its owner, its status
and last error, its timestamps. With ``DjangoCheckpointer`` it is the very row
the store locks and points at the head checkpoint, and the store keeps
``status`` exact at every checkpoint. With Redis or SQL checkpointers the row
only records ownership and status, and the status follows the runs through
the signal receivers below. A row for a session that has none yet is created
by the REST API (owned by the caller) and by the admin's "Start a session".

Everything blocking runs on flows' ORM thread pool (``run_in_orm_thread``),
whose connections persist between calls (``CONN_MAX_AGE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.db import IntegrityError, models, transaction
from django.db.models.functions import Now

from . import registry
from .checkpointer import DjangoCheckpointer, run_in_orm_thread
from .conf import flows_settings
from .engine.checkpointers import Checkpointer, CheckpointMetadata
from .engine.checkpointers.checkpointer import head_status

if TYPE_CHECKING:
    from .base_models import AbstractFlowSession


class SessionNotFound(LookupError):
    """No such session — or one the caller may not reach, which must look the same."""

    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r} of this flow")


def owner_id_for(user: Any) -> int | None:
    """The owner a new session gets: the signed-in user, or none."""
    return user.pk if user is not None and user.is_authenticated else None


def may_access(user: Any, owner_id: int | None) -> bool:
    """Whether ``user`` reaches a session owned by ``owner_id`` (``None``: no owner).

    Owners reach their sessions, staff every session; ownerless sessions are
    staff's, or everyone's when ``FLOWS["ANONYMOUS"]`` is on.
    """
    if user is not None and user.is_authenticated:
        if user.is_staff:
            return True
        if owner_id is not None:
            return owner_id == user.pk
    return owner_id is None and bool(flows_settings.ANONYMOUS)


#: A run's event -> the session status it leaves behind.
STATUS_AFTER_EVENT = {
    "run_started": "running",
    "run_finished": "idle",
    "interrupted": "interrupted",
    "run_failed": "failed",
}


def session_status(recorded: str | None, head: CheckpointMetadata | None) -> str:
    """What a session is doing, from its head checkpoint and the status its row records.

    The head tells whether a question is pending or the last run finished; a
    head with nodes left is a run in progress, or one that failed (the row
    says which). A worker that crashed mid-run leaves "running" until the
    session is run again.
    """
    status = head_status(head)
    return "failed" if status == "running" and recorded == "failed" else status


def _store_of(checkpointer: Checkpointer | None) -> tuple[type[AbstractFlowSession], str]:
    if isinstance(checkpointer, DjangoCheckpointer):
        # the store types its models as plain Model; a session model subclasses AbstractFlowSession
        return cast("type[AbstractFlowSession]", checkpointer.store.orm.Session), checkpointer.using
    from .models import FlowSession

    return FlowSession, "default"


def _checkpointer(flow_name: str) -> Checkpointer | None:
    try:
        return registry.get_checkpointer(flow_name)
    except registry.FlowNotFound:  # a flow run outside the registry: the default table
        return None


def session_model(flow_name: str) -> tuple[type[AbstractFlowSession], str]:
    """The session model of a flow and the database alias its rows live in."""
    return _store_of(_checkpointer(flow_name))


def store_keeps_status(flow_name: str) -> bool:
    """Whether the flow's store writes the row's status at every checkpoint itself."""
    return isinstance(_checkpointer(flow_name), DjangoCheckpointer)


def failure_message(error: dict[str, Any]) -> str:
    """A ``run_failed`` event's error as one line, naming the node."""
    message = f"{error.get('type', 'Error')}: {error.get('message', '')}"
    if error.get("node") and repr(error["node"]) not in message:
        message = f"node {error['node']!r}: {message}"
    return message


def rows(flow_name: str) -> tuple[models.QuerySet[AbstractFlowSession], str]:
    """The flow's session rows, and the database alias to query them on."""
    model, using = session_model(flow_name)
    return model._default_manager.using(using).filter(flow_name=flow_name), using


async def aget(flow_name: str, session_id: str) -> AbstractFlowSession | None:
    """The session's row, or ``None``."""
    found, using = rows(flow_name)
    return await run_in_orm_thread(lambda: found.filter(session_id=session_id).first(), using=using)


async def acreate(flow_name: str, session_id: str, owner_id: int | None) -> tuple[AbstractFlowSession, bool]:
    """The session's row, created for ``owner_id`` if there is none; ``(row, created)``."""
    found, using = rows(flow_name)

    def create() -> tuple[AbstractFlowSession, bool]:
        try:
            with transaction.atomic(using=using):
                return found.create(flow_name=flow_name, session_id=session_id, owner_id=owner_id), True
        except IntegrityError:  # created meanwhile (by another request, or the store)
            return found.get(session_id=session_id), False

    return await run_in_orm_thread(create, using=using)


async def adelete(flow_name: str, session_id: str) -> None:
    """Deletes the session's row and its runs (a new session with the same id starts with none)."""
    found, using = rows(flow_name)

    def delete() -> None:
        from .models import Run

        found.filter(session_id=session_id).delete()
        Run.objects.filter(flow_name=flow_name, session_id=session_id).delete()

    await run_in_orm_thread(delete, using=using)


async def amark(flow_name: str, session_id: str, status: str, *, error: str | None = None) -> None:
    """Records a session's status (and, for a failure, its error) on its row, if it has one."""
    found, using = rows(flow_name)
    changes: dict[str, Any] = {"status": status, "updated_at": Now()}
    if error is not None:
        changes["last_error"] = error
    await run_in_orm_thread(lambda: found.filter(session_id=session_id).update(**changes), using=using)
