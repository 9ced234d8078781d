"""``FlowEngine``: build a graph over a typed state, then run it, checkpointed."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import (
    Any,
    Concatenate,
    ParamSpec,
    TypeVar,
    cast,
)

from .checkpointers.checkpointer import TAKE_OVER, Checkpointer
from .checkpointers.types import Checkpoint, CheckpointMetadata, Lease
from .compiled import DURABILITY_MODES, CompiledFlow, Emit, RunRequest
from .errors import CheckpointNotFound, GraphValidationError, InvalidInput, NothingToResume
from .graph import Edge, Graph
from .history import HistoryPage, ahistory
from .hooks import EVENT_HOOKS, FlowEngineHooks
from .ids import validate_session_id
from .primitives import INPUT_NODE, START
from .retry import RetryPolicy
from .runner import INTERRUPT_KEY, Run
from .schedule import Schedule
from .serde import JsonSerializer
from .state import Field, StateSchema
from .sync import run_sync

_UNSET: Any = object()
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Call:
    """The arguments of :meth:`FlowEngine.invoke` and :meth:`FlowEngine.stream`, defined once.

    ``resume`` answers a pending interrupt; ``checkpoint_id`` continues from an
    older checkpoint, forking a new branch; ``run_id`` names the run the call
    starts (random when omitted); ``on_busy`` says what to do when another
    call holds the session (``wait``, ``reject``, ``interrupt``, ``rollback``);
    ``durability`` overrides the flow's for this call (``sync``, ``async``, ``exit``).
    """

    apply_state: Mapping[str, Any] | None = None
    session_id: str | None = None
    _: KW_ONLY
    max_steps: int | None = None
    resume: Any = _UNSET
    checkpoint_id: str | None = None
    on_busy: str | None = None
    run_id: str | None = None
    durability: str | None = None


@dataclass(frozen=True, slots=True)
class _Request:
    """A :class:`Call` checked, with its defaults resolved."""

    session_id: str | None
    updates: dict[str, Any] | None
    resume: Any
    checkpoint_id: str | None
    on_busy: str
    max_steps: int
    run_id: str
    emit: Emit | None
    durability: str


def _called_with(make: Callable[P, Call]) -> Callable[[Callable[[Any, Call], R]], Callable[Concatenate[Any, P], R]]:
    """Gives a method ``(self, call)`` the signature of ``make`` (``Call``): ``invoke`` and ``stream`` share it."""

    def decorate(method: Callable[[Any, Call], R]) -> Callable[Concatenate[Any, P], R]:
        async def coroutine(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await cast(Awaitable[Any], method(self, make(*args, **kwargs)))

        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            return method(self, make(*args, **kwargs))

        # a coroutine function stays one (a node may be one); an async generator's
        # generator is handed back as is, so aclose() reaches it
        wrapper: Any = coroutine if inspect.iscoroutinefunction(method) else generator
        functools.update_wrapper(wrapper, method)
        parameters = list(inspect.signature(method).parameters.values())[:1]
        parameters += inspect.signature(make).parameters.values()
        wrapper.__signature__ = inspect.signature(method).replace(parameters=parameters)
        return cast(Callable[Concatenate[Any, P], R], wrapper)

    return decorate


class FlowEngine:
    """A graph workflow whose state is checkpointed after every node.

    Build it with :meth:`add_node`, :meth:`add_edge` and
    :meth:`add_conditional_edges`, then :meth:`build` (done on first use if
    forgotten). Without a ``checkpointer`` every call starts from scratch.
    Sync code drives it through :attr:`sync`.
    """

    def __init__(
        self,
        state_schema: type,
        checkpointer: Checkpointer | None = None,
        *,
        max_steps: int = 100,
        types: Iterable[type] | None = None,
        hooks: FlowEngineHooks | None = None,
        durability: str = "sync",
    ) -> None:
        if checkpointer is not None and not isinstance(checkpointer, Checkpointer):
            raise TypeError("checkpointer must be a Checkpointer (InMemoryCheckpointer, RedisCheckpointer, ...)")
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {DURABILITY_MODES}, not {durability!r}")
        self.state_schema = state_schema
        self.checkpointer = checkpointer
        self.max_steps = max_steps
        self.durability = durability
        self.serializer = JsonSerializer(types or ())
        self._schema = StateSchema(state_schema)
        self._graph = Graph()
        self._built = False
        self._hooks: list[FlowEngineHooks] = []
        self._hook_calls: dict[str, list[Callable[..., Any]]] = {}
        self._on_checkpoint: list[Callable[..., Any]] = []
        self._compiled: CompiledFlow | None = None
        if hooks is not None:
            self.add_hooks(hooks)

    def add_hooks(self, hooks: FlowEngineHooks) -> FlowEngine:
        """Adds lifecycle hooks (several may be added; each is called in turn)."""
        if not isinstance(hooks, FlowEngineHooks):
            raise TypeError("hooks must be a FlowEngineHooks instance")
        active = hooks.overridden()
        for kind, name in EVENT_HOOKS.items():
            if name in active:
                self._hook_calls.setdefault(kind, []).append(getattr(hooks, name))
        if "on_checkpoint" in active:
            self._on_checkpoint.append(hooks.on_checkpoint)
        self._hooks.append(hooks)
        self._compiled = None  # the next run sees these hooks too
        return self

    @property
    def hooks(self) -> tuple[FlowEngineHooks, ...]:
        return tuple(self._hooks)

    # -- building -------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        func: Callable[..., Any],
        *,
        stream: bool = False,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        interrupt_before: bool = False,
        interrupt_after: bool = False,
    ) -> FlowEngine:
        self._check_not_built()
        self._graph.add_node(
            name, func, stream=stream, retry=retry, timeout=timeout,
            interrupt_before=interrupt_before, interrupt_after=interrupt_after,
        )
        return self

    def add_edge(self, source: str | Sequence[str], target: str | Sequence[str]) -> FlowEngine:
        """``target`` may be a list (fan-out); a node with several static predecessors is a join."""
        self._check_not_built()
        self._graph.add_edge(source, target)
        return self

    def add_conditional_edges(
        self,
        source: str,
        condition: Callable[..., Any],
        targets: Sequence[str] | Mapping[str, str] | None = None,
    ) -> FlowEngine:
        """``condition(state)`` returns a target, a key of ``targets``, ``END``, a ``Send`` or a list."""
        self._check_not_built()
        self._graph.add_branch(source, condition, targets)
        return self

    def build(self) -> FlowEngine:
        """Validates the graph; raises :class:`GraphValidationError` naming the problem."""
        self.compiled()
        return self

    def compiled(self) -> CompiledFlow:
        """The flow as its runs see it (validated and built on first use)."""
        if not self._built:
            self._graph.validate()
            self._built = True
        if self._compiled is None:
            self._compiled = CompiledFlow(
                self._graph, self._schema, self.serializer, self.checkpointer, tuple(self._on_checkpoint)
            )
        return self._compiled

    def _check_not_built(self) -> None:
        if self._built:
            raise GraphValidationError("the flow is already built; create a new FlowEngine to change it")

    def details(self) -> str:
        return self._graph.details()

    def to_mermaid(self) -> str:
        return self._graph.to_mermaid()

    def edges(self) -> list[Edge]:
        """The graph's edges (static, then conditional with their keys)."""
        return self._graph.edge_list()

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self._graph.nodes)

    @property
    def state_fields(self) -> tuple[str, ...]:
        return tuple(self._schema.fields)

    def field_specs(self) -> tuple[Field, ...]:
        """The state schema's fields: name, declared type and reducer."""
        return tuple(self._schema.fields.values())

    def input_from_json(self, data: Mapping[str, Any], origin: str = "the input") -> dict[str, Any]:
        """State updates from JSON data, converted by the schema's annotations.

        For input that arrives as JSON (HTTP, the command line): ISO strings
        become datetimes, objects registered dataclasses or models, and so on.
        Raises :class:`InvalidInput` naming the fields that do not fit.
        """
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{origin} must be a JSON object, not {type(data).__name__}")
        return self._schema.from_json(data, origin)

    # -- running --------------------------------------------------------------------

    @_called_with(Call)
    async def invoke(self, call: Call) -> dict[str, Any]:
        """Runs the flow and returns its state (with ``"__interrupt__"`` when paused).

        With a checkpointer and ``session_id``: a new session starts from START;
        a finished head starts a new run with ``apply_state`` merged in; an
        unfinished head continues exactly where it stopped. The arguments are
        :class:`Call`'s; a call that continues an unfinished run keeps that
        run's id.
        """
        return await self._run(call, None)

    @_called_with(Call)
    async def stream(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        """Same as :meth:`invoke`, yielding events live; a failure is yielded, then raised.

        Leaving the loop early cancels the run; it resumes from its last
        checkpoint on the next call.
        """
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def emit(event: dict[str, Any]) -> None:
            queue.put_nowait(event)

        async def produce() -> None:
            try:
                await self._run(call, emit)
            finally:
                queue.put_nowait(None)

        runner = asyncio.ensure_future(produce())
        try:
            while (event := await queue.get()) is not None:
                yield event
            await runner
        finally:
            if not runner.done():
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)

    async def _run(self, call: Call, stream_emit: Emit | None) -> dict[str, Any]:
        flow = self.compiled()
        request = self._request(call, stream_emit)
        if self.checkpointer is None or request.session_id is None:
            if request.resume is not _UNSET or request.checkpoint_id is not None:
                raise InvalidInput("resume and checkpoint_id need a checkpointer and a session_id")
            run = Run(flow, self._run_request(request, None, {}, Schedule(), None, request.run_id))
            await run.start(request.updates)
            return await run.execute()
        async with self.checkpointer.alock(request.session_id, on_busy=request.on_busy) as lease:
            return await self._run_session(flow, lease, request)

    def _request(self, call: Call, stream_emit: Emit | None) -> _Request:
        """Checks ``call`` and resolves its defaults."""
        if call.session_id is not None:
            validate_session_id(call.session_id)
        if call.run_id is not None and not RUN_ID_PATTERN.fullmatch(str(call.run_id)):
            raise InvalidInput(f"invalid run id {call.run_id!r}: use 1-64 characters from A-Z a-z 0-9 _ . : -")
        if call.apply_state is not None and not isinstance(call.apply_state, Mapping):
            raise InvalidInput(f"apply_state must be a dict or None, not {type(call.apply_state).__name__}")
        updates = dict(call.apply_state) if call.apply_state else None
        if updates:
            self._schema.check_input(updates, "the input")
        if call.max_steps is not None and (isinstance(call.max_steps, bool) or call.max_steps < 1):
            raise InvalidInput(f"max_steps must be at least 1, not {call.max_steps!r}")
        if call.durability is not None and call.durability not in DURABILITY_MODES:
            raise InvalidInput(f"durability must be one of {DURABILITY_MODES}, not {call.durability!r}")
        return _Request(
            session_id=call.session_id,
            updates=updates,
            resume=call.resume,
            checkpoint_id=call.checkpoint_id,
            on_busy=call.on_busy or "wait",
            max_steps=call.max_steps if call.max_steps is not None else self.max_steps,
            run_id=call.run_id or uuid.uuid4().hex,
            emit=self._emitter(stream_emit),
            durability=call.durability or self.durability,
        )

    @staticmethod
    def _run_request(
        request: _Request,
        lease: Lease | None,
        state: dict[str, Any],
        schedule: Schedule,
        parent: CheckpointMetadata | None,
        run_id: str,
    ) -> RunRequest:
        return RunRequest(
            run_id, request.session_id, state, schedule, parent, lease, request.emit, request.max_steps,
            request.durability,
        )

    async def _run_session(self, flow: CompiledFlow, lease: Lease, request: _Request) -> dict[str, Any]:
        checkpointer = self.checkpointer
        assert checkpointer is not None
        session_id, resume, updates = lease.session_id, request.resume, request.updates
        starts_over = False
        if request.checkpoint_id is not None:
            start = await checkpointer.aget_metadata(session_id, request.checkpoint_id, serializer=self.serializer)
        elif lease.head is not None:
            start = checkpointer.decode_metadata(lease.head, self.serializer)
            if request.on_busy in TAKE_OVER and resume is _UNSET and _in_progress(start):
                # The new input takes precedence over the run left unfinished (interrupted
                # just now, or earlier): it starts a new run on what that one checkpointed,
                # or, with "rollback", on what was there before it.
                if request.on_busy == "rollback":
                    start = await self._roll_back(lease, start)
                starts_over = start is not None and _in_progress(start)
        else:
            start = None
        state = await checkpointer.amaterialise(start, self.serializer, shared=self._schema.appending) if start else {}
        schedule = Schedule.from_json(dict(start.schedule)) if start else Schedule()

        if start is None or start.finished or starts_over:
            if resume is not _UNSET:
                raise NothingToResume(f"session {session_id!r} has no pending interrupt to resume")
            run = Run(flow, self._run_request(request, lease, state, Schedule(), start, request.run_id))
            await run.start(updates)
            return await run.execute()
        unknown = sorted({t.node for t in schedule.current + schedule.following} - set(self._graph.nodes))
        if unknown:
            raise InvalidInput(
                f"session {session_id!r} is waiting to run {unknown}, which this flow does not have "
                "(was the graph changed?); reset the session or fork from an earlier checkpoint"
            )
        run = Run(flow, self._run_request(request, lease, state, schedule, start, start.run_id))
        if start.interrupt:
            if resume is _UNSET:
                # New input while a question is pending: keep both, run nothing.
                if updates:
                    changes = self._schema.merge(state, updates, "the input", True)
                    await run.save(INPUT_NODE, changes, interrupt=start.interrupt)
                return await run.still_pending(list(start.interrupt))
            _answer(schedule, start.interrupt, resume)
        elif resume is not _UNSET:
            raise NothingToResume(f"session {session_id!r} has no pending interrupt to resume")
        if schedule.base not in (None, start.checkpoint_id):
            run.resumed_base = await self._state_at(session_id, schedule.base)
        if updates or start.interrupt:
            changes = self._schema.merge(state, updates or {}, "the input", True)
            await run.save(INPUT_NODE, changes)
        return await run.execute()

    async def _roll_back(self, lease: Lease, head: CheckpointMetadata) -> CheckpointMetadata | None:
        """Deletes the checkpoints of the call that left ``head`` unfinished; returns the new head.

        That call's first checkpoint is the last ``START`` or ``__input__`` of
        ``head``'s run (or the run's first, after a call that continued it with no input).
        """
        checkpointer = self.checkpointer
        assert checkpointer is not None
        first, before = head, None
        while True:
            page = await checkpointer.alist(lease.session_id, limit=64, before=before, serializer=self.serializer)
            for meta in page:
                if meta.run_id != head.run_id:
                    break
                first = meta
                if meta.node in (START, INPUT_NODE):
                    break
            else:
                if len(page) == 64:
                    before = page[-1].checkpoint_id
                    continue
            break
        await checkpointer.adelete_held(lease, first.checkpoint_id)
        return checkpointer.decode_metadata(lease.head, self.serializer) if lease.head is not None else None

    async def _state_at(self, session_id: str, checkpoint_id: str) -> dict[str, Any] | None:
        """The state at a checkpoint, or ``None`` if retention removed it."""
        assert self.checkpointer is not None
        try:
            meta = await self.checkpointer.aget_metadata(session_id, checkpoint_id, serializer=self.serializer)
        except CheckpointNotFound:
            return None
        if meta is None:
            return None
        return await self.checkpointer.amaterialise(meta, self.serializer, shared=self._schema.appending)

    def _emitter(self, stream_emit: Emit | None) -> Emit | None:
        hooks = self._hook_calls
        if not hooks:
            return stream_emit

        async def emit(event: dict[str, Any]) -> None:
            for hook in hooks.get(event["event"], ()):
                result = hook(event)
                if asyncio.iscoroutine(result):
                    await result
            if stream_emit is not None:
                await stream_emit(event)

        return emit

    # -- inspecting and editing ---------------------------------------------------------

    def _require_checkpointer(self) -> Checkpointer:
        if self.checkpointer is None:
            raise InvalidInput("this flow has no checkpointer, so it keeps no sessions")
        return self.checkpointer

    async def get_state(self, session_id: str, checkpoint_id: str | None = None) -> dict[str, Any] | None:
        """The state at the head (or at ``checkpoint_id``); ``None`` for an unknown session.

        A pending question shows as ``"__interrupt__"``, as in :meth:`invoke`.
        """
        checkpoint = await self.get_checkpoint(session_id, checkpoint_id)
        if checkpoint is None:
            return None
        state = dict(checkpoint.state)
        if checkpoint.metadata.interrupt:
            state[INTERRUPT_KEY] = [dict(q) for q in checkpoint.metadata.interrupt]
        return state

    async def get_metadata(self, session_id: str, checkpoint_id: str | None = None) -> CheckpointMetadata | None:
        """The head's (or ``checkpoint_id``'s) metadata without its state: one read."""
        return await self._require_checkpointer().aget_metadata(session_id, checkpoint_id, serializer=self.serializer)

    async def get_checkpoint(self, session_id: str, checkpoint_id: str | None = None) -> Checkpoint | None:
        return await self._require_checkpointer().aget(
            session_id, checkpoint_id, serializer=self.serializer, shared=self._schema.appending
        )

    async def list_checkpoints(
        self, session_id: str, limit: int = 10, before: str | None = None
    ) -> list[CheckpointMetadata]:
        """The head's history, newest first (metadata only; see :meth:`get_checkpoint`)."""
        return await self._require_checkpointer().alist(
            session_id, limit=limit, before=before, serializer=self.serializer
        )

    async def history(self, session_id: str, *, limit: int = 20, before: str | None = None) -> HistoryPage:
        """A page of the head's history, newest first, with what each checkpoint changed (old → new)."""
        return await ahistory(
            self._require_checkpointer(), session_id, serializer=self.serializer, limit=limit, before=before
        )

    async def list_all_checkpoints(self, session_id: str) -> list[CheckpointMetadata]:
        """Every checkpoint of the session on every branch, oldest first (see :meth:`list_checkpoints`)."""
        return await self._require_checkpointer().alist_all(session_id, serializer=self.serializer)

    async def update_state(
        self, session_id: str, values: Mapping[str, Any], as_node: str | None = None
    ) -> CheckpointMetadata:
        """Writes a checkpoint applying ``values`` through the reducers, running no node.

        With ``as_node`` the checkpoint counts as that node's completion: the run
        continues with its successors (pending questions are dropped). Without
        it, what was pending stays pending.
        """
        checkpointer = self._require_checkpointer()
        if as_node is not None and as_node not in self._graph.nodes:
            raise InvalidInput(f"as_node {as_node!r} is not a node of this flow")
        if not isinstance(values, Mapping):
            raise InvalidInput(f"update_state values must be a dict, not {type(values).__name__}")
        self._schema.check_input(values, "update_state")
        async with checkpointer.alock(session_id) as lease:
            head = checkpointer.decode_metadata(lease.head, self.serializer) if lease.head else None
            shared = self._schema.appending
            state = await checkpointer.amaterialise(head, self.serializer, shared=shared) if head else {}
            schedule = Schedule.from_json(dict(head.schedule)) if head else Schedule()
            run_id = head.run_id if head else uuid.uuid4().hex
            request = RunRequest(run_id, session_id, state, schedule, head, lease, None, self.max_steps)
            run = Run(self.compiled(), request)
            changes = self._schema.merge(state, dict(values), "update_state", True)
            interrupt = head.interrupt if head else ()
            if as_node is not None:
                interrupt = ()
                schedule.current = [t for t in schedule.current if t.node != as_node]
                for target in await run.successors(as_node, state):
                    run.route(as_node, target)
                schedule.normalise()
            await run.save(as_node or "__update__", changes, interrupt=interrupt)
            assert run.parent is not None
            return run.parent

    async def delete_checkpoints(self, session_id: str, checkpoint_id: str | None = None) -> int:
        """Deletes the session's checkpoints, or one and those built on it (the head moves back)."""
        return await self._require_checkpointer().adelete(session_id, checkpoint_id)

    async def reset_session(self, session_id: str) -> None:
        """Clears every checkpoint of the session: the next call starts fresh."""
        await self._require_checkpointer().adelete(session_id)

    @property
    def sync(self) -> SyncFlow:
        """Blocking versions of the methods, for sync code (views, commands, a shell)."""
        return SyncFlow(self)


class SyncFlow:
    """The blocking twin of a :class:`FlowEngine`: same methods, same arguments (see :mod:`.sync`)."""

    def __init__(self, flow: FlowEngine) -> None:
        self._flow = flow

    def invoke(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return run_sync(self._flow.invoke(*args, **kwargs))

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Yields events as they happen (each one fetched from the background loop)."""
        events = cast(AsyncGenerator[dict[str, Any], None], self._flow.stream(*args, **kwargs))
        try:
            while True:
                try:
                    yield run_sync(events.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            run_sync(events.aclose())

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        return run_sync(self._flow.get_state(*args, **kwargs))

    def get_metadata(self, *args: Any, **kwargs: Any) -> CheckpointMetadata | None:
        return run_sync(self._flow.get_metadata(*args, **kwargs))

    def get_checkpoint(self, *args: Any, **kwargs: Any) -> Checkpoint | None:
        return run_sync(self._flow.get_checkpoint(*args, **kwargs))

    def list_checkpoints(self, *args: Any, **kwargs: Any) -> list[CheckpointMetadata]:
        return run_sync(self._flow.list_checkpoints(*args, **kwargs))

    def update_state(self, *args: Any, **kwargs: Any) -> CheckpointMetadata:
        return run_sync(self._flow.update_state(*args, **kwargs))

    def delete_checkpoints(self, *args: Any, **kwargs: Any) -> int:
        return run_sync(self._flow.delete_checkpoints(*args, **kwargs))

    def reset_session(self, *args: Any, **kwargs: Any) -> None:
        return run_sync(self._flow.reset_session(*args, **kwargs))


def _in_progress(meta: CheckpointMetadata) -> bool:
    """A run left this checkpoint with nodes to go and no question pending."""
    return not meta.finished and not meta.interrupt


def _answer(schedule: Schedule, pending: Sequence[Mapping[str, Any]], resume: Any) -> None:
    """Delivers ``resume`` to the pending questions: ``{id: answer}``, or one answer for one question."""
    ids = [q["id"] for q in pending]
    if isinstance(resume, Mapping) and resume and set(resume) <= set(ids):
        answers = dict(resume)
    elif len(ids) == 1:
        answers = {ids[0]: resume}
    else:
        raise InvalidInput(f"several questions are pending ({ids}): resume with a dict {{id: answer}}")
    tasks = {t.id: t for t in schedule.current}
    for question_id, answer in answers.items():
        task_id, _, kind = question_id.rpartition(":")
        task = tasks.get(task_id)
        if kind == "after":
            schedule.after = [q for q in schedule.after if q["id"] != question_id]
        elif kind == "before" and task is not None:
            task.before_ok = True
        elif kind.isdigit() and task is not None:
            task.answers.append(answer)
