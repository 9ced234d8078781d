"""Executes one run: supersteps of tasks, a checkpoint after every node.

Nodes scheduled together form a superstep: they all see the state as it was
when the superstep began, run concurrently, and merge their updates as each
completes, each completion saving a checkpoint whose schedule says exactly what
is left. Interrupts and failures leave their task in the schedule, so the next
call continues with it and with nothing else that already completed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import interrupts
from .checkpointers import delta
from .checkpointers.types import EXTEND, SET, Change, PreparedPut
from .compiled import CompiledFlow, RunRequest
from .errors import FlowError, InvalidInput, MaxStepsExceeded, NodeError, NodeTimeout, RouteError
from .graph import NODE_ASYNC, NODE_ASYNC_GEN, NODE_GEN, NODE_PLAIN, Node
from .primitives import END, START, Send
from .schedule import NO_ARG, Task
from .values import fresh

INTERRUPT_KEY = "__interrupt__"
logger = logging.getLogger("flows.engine")
_DONE = object()


@dataclass(slots=True)
class _Outcome:
    task: Task
    updates: list[dict[str, Any]] | None = None
    attempt: int = 1
    interrupt: interrupts.Interrupted | None = None
    error: BaseException | None = None


class Run:
    """One call's execution of a run, from a schedule and a state."""

    def __init__(self, flow: CompiledFlow, request: RunRequest) -> None:
        self.flow = flow
        self.graph = flow.graph
        self.run_id = request.run_id
        self.session_id = request.session_id
        self.state = request.state
        self.schedule = request.schedule
        self.parent = request.parent
        #: the checkpoint this call started from (the head, or the fork point): what it writes comes after
        self.base_checkpoint_id = request.parent.checkpoint_id if request.parent is not None else None
        self.lease = request.lease
        self.emit = request.emit
        self.max_steps = request.max_steps
        self.durability = request.durability
        self.track = request.lease is not None
        #: ``async``: the write of the newest checkpoint, chained after the ones before it
        self._writing: asyncio.Future[None] | None = None
        #: ``exit``: what the run changed since its last write, and its last step's bookkeeping
        self._held: dict[str, Change] = {}
        self._held_step: dict[str, Any] | None = None
        #: the input state of a superstep resumed half-way (see Schedule.base)
        self.resumed_base: dict[str, Any] | None = None

    # -- events & checkpoints -----------------------------------------------------

    async def send(self, kind: str, node: str | None = None, *, step: int | None = None, **data: Any) -> None:
        if self.emit is not None:
            await self.emit(
                {"event": kind, "run_id": self.run_id, "session_id": self.session_id, "node": node,
                 "step": self.schedule.step if step is None else step, **data}
            )

    async def save(
        self,
        node: str | None,
        changes: dict[str, Change],
        *,
        attempt: int = 1,
        dispatch_id: str | None = None,
        interrupt: tuple[dict[str, Any], ...] = (),
        step: int | None = None,
    ) -> str | None:
        """Checkpoints a step as the run's durability says; returns the checkpoint's id
        (``None`` without a session, or while ``exit`` holds it back)."""
        if self.lease is None:
            return None
        step = self.schedule.step if step is None else step
        if self.durability == "exit":
            self._held = _combined(self._held, changes)
            self._held_step = {"node": node, "attempt": attempt, "dispatch_id": dispatch_id, "step": step}
            if not interrupt:
                return None
            changes, self._held, self._held_step = self._held, {}, None
        if self.durability == "async":
            return await self._write_behind(node, changes, attempt, dispatch_id, interrupt, step)
        return await self._write(node, changes, attempt, dispatch_id, interrupt, step)

    def _put(self, node: str | None, changes: dict[str, Change], attempt: int, dispatch_id: str | None,
             interrupt: tuple[dict[str, Any], ...], step: int) -> PreparedPut:
        flow = self.flow
        assert flow.checkpointer is not None and self.lease is not None  # a lease comes from it
        put = flow.checkpointer.prepare_put(
            self.lease,
            parent=self.parent,
            state=self.state,
            changes=changes,
            run_id=self.run_id,
            node=node,
            step=step,
            next=self.schedule.names(),
            interrupt=interrupt,
            schedule=self.schedule.to_json(flow.serializer.to_jsonable),
            attempt=attempt,
            dispatch_id=dispatch_id,
            serializer=flow.serializer,
        )
        self.parent = put.metadata
        return put

    async def _write(self, node: str | None, changes: dict[str, Change], attempt: int, dispatch_id: str | None,
                     interrupt: tuple[dict[str, Any], ...], step: int) -> str:
        put = self._put(node, changes, attempt, dispatch_id, interrupt, step)
        await self._committed(put)
        return put.metadata.checkpoint_id

    async def _write_behind(self, node: str | None, changes: dict[str, Change], attempt: int,
                            dispatch_id: str | None, interrupt: tuple[dict[str, Any], ...], step: int) -> str:
        """``async``: writes the checkpoint while the next node runs. The write before it is
        awaited first, so at most the newest checkpoint is ever unwritten (what a crash can re-run)."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing  # a write that failed stops the run here
        put = self._put(node, changes, attempt, dispatch_id, interrupt, step)
        self._writing = asyncio.ensure_future(self._committed(put))
        return put.metadata.checkpoint_id

    async def _committed(self, put: PreparedPut) -> None:
        assert self.flow.checkpointer is not None and self.lease is not None
        meta = await self.flow.checkpointer.commit_put(self.lease, put)
        for hook in self.flow.on_checkpoint:
            await _call(hook, meta)

    async def flush(self) -> None:
        """Writes what the run's durability still holds: before it returns, reports a question, or fails."""
        if self._held_step is not None:
            held, last = self._held, self._held_step
            self._held, self._held_step = {}, None
            await self._write(changes=held, interrupt=(), **last)
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing

    # -- entry points -------------------------------------------------------------

    async def start(self, updates: dict[str, Any] | None) -> None:
        """Begins a new run: merges the input, schedules START's targets, saves.

        The state is the run's own here (as read from its checkpoint, or empty):
        no node has seen it yet, so appending fields may grow in place.
        """
        changes = self.flow.schema.merge(self.state, updates or {}, "the input", self.track, own=True)
        try:
            targets = await self.successors(START, self.state)
        except Exception as error:  # the user's condition after START failed
            raise error if isinstance(error, FlowError) else RouteError(START, error) from error
        for target in targets:
            self.route(START, target)
        self.schedule.normalise()
        await self.save(START, changes, step=0)

    async def execute(self) -> dict[str, Any]:
        """Runs supersteps until END, an interrupt, or a failure."""
        await self.send("run_started", base_checkpoint_id=self.base_checkpoint_id)
        steps = 0
        try:
            while self.schedule.current or self.schedule.after:
                paused = self.schedule.after or self._paused_before()  # one kind of question at a time
                if paused:
                    return await self.pause(paused)
                steps += 1
                if steps > self.max_steps:
                    names = ", ".join(repr(t.node) for t in self.schedule.current)
                    raise MaxStepsExceeded(
                        f"the run exceeded max_steps={self.max_steps} in one call; it stopped before node {names}"
                    )
                asked = await self.superstep()
                if asked:
                    return await self.pause(asked)
        except BaseException as error:
            await self._flush_after(error)
            if not isinstance(error, asyncio.CancelledError):
                await self.send("run_failed", error={"type": type(error).__name__, "message": str(error),
                                                     "node": getattr(error, "node", None)})
            elif self.lease is not None and self.lease.superseded:  # a newer call took the session over
                await self.send("run_failed", error={"type": "RunSuperseded", "node": None,
                                                     "message": "a newer call took the session over"})
            raise
        await self.flush()
        await self.send("run_finished", state=self.state)
        return self.state

    async def _flush_after(self, error: BaseException) -> None:
        """Writes what completed before ``error``, so a resume re-runs only what did not.

        A write that fails too (the lease was taken over, the store is down)
        is logged: the run's own error is what the caller must see.
        """
        try:
            if isinstance(error, asyncio.CancelledError):  # stopped: still write what it finished
                await asyncio.shield(self.flush())
            else:
                await self.flush()
        except (FlowError, asyncio.CancelledError) as failure:
            logger.warning("run %s: what it checkpointed last could not be written: %r", self.run_id, failure)

    # -- supersteps -----------------------------------------------------------------

    async def superstep(self) -> list[dict[str, Any]]:
        """Runs the current tasks; returns the questions they asked (if any).

        Every task starts from the state as it was when the superstep began;
        failures (of nodes or of the conditions after them) are raised once
        the other tasks have finished and been checkpointed.
        """
        tasks = list(self.schedule.current)
        base, self.resumed_base = self.resumed_base or self.state, None
        if self.durability == "exit" and len(tasks) > 1:
            await self.flush()  # a branch re-run must find the state the fan-out started from
        if self.schedule.base is None and self.parent is not None and (len(tasks) > 1 or self.durability != "exit"):
            self.schedule.base = self.parent.checkpoint_id
        asked: list[dict[str, Any]] = []
        errors: list[BaseException] = []
        if len(tasks) == 1:
            await self.complete(await self.run_task(tasks[0], base), asked, errors)
        else:
            running = {asyncio.ensure_future(self.run_task(t, base)) for t in tasks}
            try:
                while running:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for future in done:
                        await self.complete(future.result(), asked, errors)
            finally:
                for future in running:
                    future.cancel()
                if running:
                    await asyncio.gather(*running, return_exceptions=True)
        if errors:
            raise errors[0]
        return asked

    @staticmethod
    def input_of(task: Task, base: dict[str, Any]) -> Any:
        """A node's input, new for each attempt: a retry never sees an earlier attempt's edits."""
        return dict(base) if task.arg is NO_ARG else fresh(task.arg)

    async def complete(self, outcome: _Outcome, asked: list[dict[str, Any]], errors: list[BaseException]) -> None:
        task = outcome.task
        if outcome.interrupt is not None:
            asked.append({"id": f"{task.id}:{outcome.interrupt.index}", "node": task.node,
                          "value": outcome.interrupt.value})
            return
        if outcome.error is not None:
            errors.append(outcome.error)
            return
        origin = f"node {task.node!r}"
        updates = outcome.updates or []
        state = dict(self.state)  # merged aside: a failing condition leaves nothing half-applied
        try:
            if len(updates) == 1:
                changes = self.flow.schema.merge(state, updates[0], origin, self.track)
            else:
                changes = self._merge_many(state, updates, origin)
        except InvalidInput as error:  # the node wrote what its schema refuses: the node failed
            policy = self.graph.nodes[task.node].retry
            failure = NodeError(task.node, outcome.attempt, policy.max_attempts if policy else 1, error)
            failure.__cause__ = error
            errors.append(failure)
            return
        try:
            targets = await self.successors(task.node, state)
        except Exception as error:  # noqa: BLE001  # the user's condition may raise anything: reported like a node failure
            errors.append(error if isinstance(error, FlowError) else RouteError(task.node, error))
            return
        self.state = state
        for target in targets:
            self.route(task.node, target)
        if self.graph.nodes[task.node].interrupt_after:
            self.schedule.after.append(
                {"id": f"{task.id}:after", "node": task.node, "value": {"when": "after", "node": task.node}}
            )
        step = self.schedule.step
        self.schedule.current.remove(task)
        self.schedule.normalise()
        checkpoint_id = await self.save(task.node, changes, attempt=outcome.attempt, dispatch_id=task.id, step=step)
        if self.emit is not None:  # the event is built only for a listener: this runs on every step
            await self.send("node_finished", task.node, step=step, task_id=task.id, attempt=outcome.attempt,
                            updates=_merged(updates), checkpoint_id=checkpoint_id)

    def _merge_many(self, state: dict[str, Any], updates: list[dict[str, Any]], origin: str) -> dict[str, Change]:
        touched = {name for update in updates for name in update}
        before = {name: state.get(name, delta.MISSING) for name in touched}
        for update in updates:
            self.flow.schema.merge(state, update, origin, False)
        if not self.track:
            return {}
        return {name: delta.diff(before[name], state[name]) for name in touched}

    def route(self, source: str, target: str | Send) -> None:
        """Schedules ``target`` after ``source`` finished (a join waits for all its predecessors)."""
        if isinstance(target, Send):
            self.schedule.schedule(Task(target.node, arg=target.state))
            return
        preds = self.graph.joins.get(target)
        if preds is None or source not in preds:
            self.schedule.schedule(Task(target))
            return
        arrived = self.schedule.arrivals.setdefault(target, [])
        if source not in arrived:
            arrived.append(source)
        if len(arrived) == len(preds):
            del self.schedule.arrivals[target]
            self.schedule.schedule(Task(target))

    async def successors(self, node: str, state: dict[str, Any]) -> list[str | Send]:
        graph = self.graph
        targets: list[str | Send] = [t for t in graph.edges.get(node, ()) if t != END]
        for branch in graph.branches.get(node, ()):
            result = branch.condition(dict(state))
            if branch.is_async or inspect.isawaitable(result):
                result = await result
            targets.extend(graph.resolve(node, branch, result))
        return targets

    # -- interrupts -------------------------------------------------------------------

    def _paused_before(self) -> list[dict[str, Any]]:
        return [
            {"id": f"{t.id}:before", "node": t.node, "value": {"when": "before", "node": t.node}}
            for t in self.schedule.current
            if self.graph.nodes[t.node].interrupt_before and not t.before_ok
        ]

    async def still_pending(self, questions: list[dict[str, Any]]) -> dict[str, Any]:
        """Reports questions that were already pending (a call that ran nothing)."""
        await self.send("run_started", base_checkpoint_id=self.base_checkpoint_id)
        return await self._asking(questions, self.parent.checkpoint_id if self.parent else None)

    async def pause(self, questions: list[dict[str, Any]]) -> dict[str, Any]:
        checkpoint_id = await self.save(questions[0]["node"], {}, interrupt=tuple(questions))
        await self.flush()  # a question is reported only once it is stored
        return await self._asking(questions, checkpoint_id)

    async def _asking(self, questions: list[dict[str, Any]], checkpoint_id: str | None) -> dict[str, Any]:
        await self.send("interrupted", questions[0]["node"], interrupts=questions, checkpoint_id=checkpoint_id,
                        state=self.state)
        return {**self.state, INTERRUPT_KEY: questions}

    # -- one task ------------------------------------------------------------------------

    async def run_task(self, task: Task, base: dict[str, Any]) -> _Outcome:
        node = self.graph.nodes[task.node]
        policy = node.retry
        attempts = policy.max_attempts if policy else 1
        scope = interrupts.TaskScope(answers=task.answers)
        attempt = 1
        while True:
            if self.emit is not None:
                await self.send("node_started", node.name, task_id=task.id, attempt=attempt)
            scope.calls = 0
            token = interrupts.enter(scope)
            try:
                updates = await self.call(node, self.input_of(task, base), task)
                return _Outcome(task, updates, attempt)
            except interrupts.Interrupted as paused:
                return _Outcome(task, interrupt=paused)
            except Exception as error:  # noqa: BLE001  # a node may raise anything: the retry policy decides
                if attempt < attempts and policy is not None and policy.should_retry(error):
                    await asyncio.sleep(policy.delay(attempt))
                    attempt += 1
                    continue
                failure = NodeError(node.name, attempt, attempts, error)
                failure.__cause__ = error
                return _Outcome(task, error=failure)
            finally:
                interrupts.leave(token)

    async def call(self, node: Node, node_input: Any, task: Task) -> list[dict[str, Any]]:
        """Calls the node once, within its timeout; returns its updates."""
        timeout = node.timeout
        kind = node.kind
        if kind == NODE_PLAIN and timeout is None:
            return _as_updates(node, node.func(node_input))
        if kind == NODE_PLAIN:
            work: Awaitable[Any] = asyncio.to_thread(node.func, node_input)
        elif kind == NODE_ASYNC:
            work = node.func(node_input)
        else:
            work = self.drain(node, node_input, task)
            if timeout is None:
                return await work
        if timeout is None:
            return _as_updates(node, await work)
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                result = await work
        except TimeoutError as exc:
            if limit.expired():
                raise NodeTimeout(f"node {node.name!r} timed out after {timeout:g}s") from exc
            raise  # the node's own TimeoutError
        return result if kind in (NODE_GEN, NODE_ASYNC_GEN) else _as_updates(node, result)

    async def drain(self, node: Node, node_input: Any, task: Task) -> list[dict[str, Any]]:
        """Runs a stream node: dicts it yields are updates, anything else a chunk."""
        updates: list[dict[str, Any]] = []
        if node.kind == NODE_ASYNC_GEN:
            async for item in node.func(node_input):
                await self._take(node, task, item, updates)
        else:
            iterator = iter(node.func(node_input))
            while (item := await asyncio.to_thread(next, iterator, _DONE)) is not _DONE:
                await self._take(node, task, item, updates)
        return updates

    async def _take(self, node: Node, task: Task, item: Any, updates: list[dict[str, Any]]) -> None:
        if isinstance(item, dict):
            updates.append(item)
        else:
            await self.send("chunk", node.name, task_id=task.id, chunk=item)


def _as_updates(node: Node, result: Any) -> list[dict[str, Any]]:
    if result is None:
        return []
    if not isinstance(result, dict):
        raise TypeError(f"node {node.name!r} returned {type(result).__name__}; a node returns a dict of updates")
    return [result]


def _merged(updates: list[dict[str, Any]]) -> dict[str, Any]:
    if len(updates) == 1:
        return updates[0]
    combined: dict[str, Any] = {}
    for update in updates:
        combined.update(update)
    return combined


async def _call(func: Callable[..., Any], *args: Any) -> Any:
    result = func(*args)
    if inspect.isawaitable(result):
        return await result
    return result


def _combined(held: dict[str, Change], changes: dict[str, Change]) -> dict[str, Change]:
    """What a run changed over several steps, as one write per field (``exit`` durability)."""
    merged = dict(held)
    for name, change in changes.items():
        before = merged.get(name)
        if before is None or change.op == SET:
            merged[name] = change
        elif before.op == SET:  # grew after it was set: set to the grown value
            merged[name] = Change(SET, before.value + change.value)
        else:
            merged[name] = Change(EXTEND, before.value + change.value)
    return merged
