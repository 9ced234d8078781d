"""The graph: nodes, edges, validation, and where a finished node leads."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import GraphValidationError, InvalidInput
from .primitives import END, RESERVED, START, Send
from .retry import RetryPolicy

NODE_PLAIN, NODE_ASYNC, NODE_GEN, NODE_ASYNC_GEN = "sync", "async", "generator", "async_generator"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    func: Callable[..., Any]
    kind: str
    retry: RetryPolicy | None
    timeout: float | None
    interrupt_before: bool
    interrupt_after: bool


@dataclass(frozen=True, slots=True)
class Branch:
    """A conditional edge: ``condition(state)`` picks among ``targets``."""

    condition: Callable[..., Any]
    targets: Mapping[str, str] | None  # key -> node; None when given as a list
    allowed: frozenset[str]
    is_async: bool


@dataclass(frozen=True, slots=True)
class Edge:
    """One edge as described to people and clients; ``label`` is a condition's key."""

    source: str
    target: str
    conditional: bool = False
    label: str | None = None


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[str, list[str]] = field(default_factory=dict)
    branches: dict[str, list[Branch]] = field(default_factory=dict)
    #: join node -> its static predecessors (only nodes with two or more)
    joins: dict[str, frozenset[str]] = field(default_factory=dict)

    # -- building ---------------------------------------------------------------

    def add_node(self, name: str, func: Callable[..., Any], **options: Any) -> None:
        if not isinstance(name, str) or not name:
            raise GraphValidationError("a node name must be a non-empty string")
        if name in RESERVED:
            raise GraphValidationError(f"{name!r} is a reserved name")
        if name in self.nodes:
            raise GraphValidationError(f"node {name!r} is already defined")
        if not callable(func):
            raise GraphValidationError(f"node {name!r}: {func!r} is not callable")
        stream = options.pop("stream", False)
        kind = _kind(func)
        if stream and kind not in (NODE_GEN, NODE_ASYNC_GEN):
            raise GraphValidationError(f"stream node {name!r} must be a generator or an async generator")
        if not stream and kind in (NODE_GEN, NODE_ASYNC_GEN):
            raise GraphValidationError(f"node {name!r} is a generator: add it with stream=True")
        retry = options["retry"]
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise GraphValidationError(f"node {name!r}: retry must be a RetryPolicy")
        timeout = options["timeout"]
        if timeout is not None and timeout <= 0:
            raise GraphValidationError(f"node {name!r}: timeout must be positive")
        self.nodes[name] = Node(
            name, func, kind, retry, timeout, options["interrupt_before"], options["interrupt_after"]
        )

    def add_edge(self, source: str | Sequence[str], target: str | Sequence[str]) -> None:
        sources = [source] if isinstance(source, str) else list(source)
        targets = [target] if isinstance(target, str) else list(target)
        if not sources or not targets:
            raise GraphValidationError("an edge needs a source and at least one target")
        for src in sources:
            for tgt in targets:
                if src == END:
                    raise GraphValidationError("END has no outgoing edges")
                if tgt == START:
                    raise GraphValidationError("no edge may lead to START")
                self.edges.setdefault(src, [])
                if tgt in self.edges[src]:
                    raise GraphValidationError(f"duplicate edge {src!r} -> {tgt!r}")
                self.edges[src].append(tgt)

    def add_branch(
        self, source: str, condition: Callable[..., Any], targets: Sequence[str] | Mapping[str, str] | None
    ) -> None:
        if source == END:
            raise GraphValidationError("END has no outgoing edges")
        if not callable(condition):
            raise GraphValidationError(f"the condition of {source!r} is not callable")
        mapping: dict[str, str] | None
        allowed: frozenset[str]
        if targets is None:
            mapping, allowed = None, frozenset()
        elif isinstance(targets, Mapping):
            mapping, allowed = dict(targets), frozenset(targets.values())
        else:
            mapping, allowed = None, frozenset(targets)
        # not a callability test (B004): an instance whose __call__ is async is an async condition
        is_async = inspect.iscoroutinefunction(condition) or inspect.iscoroutinefunction(
            getattr(condition, "__call__", None)  # noqa: B004
        )
        self.branches.setdefault(source, []).append(Branch(condition, mapping, allowed, is_async))

    # -- validation -------------------------------------------------------------

    def validate(self) -> None:
        known = set(self.nodes) | {END}
        for source, targets in self.edges.items():
            if source != START and source not in self.nodes:
                raise GraphValidationError(f"edge from unknown node {source!r}")
            for target in targets:
                if target not in known:
                    raise GraphValidationError(f"edge {source!r} -> {target!r} leads to unknown node {target!r}")
        for source, branches in self.branches.items():
            if source != START and source not in self.nodes:
                raise GraphValidationError(f"conditional edge from unknown node {source!r}")
            for branch in branches:
                unknown = branch.allowed - known
                if unknown:
                    raise GraphValidationError(
                        f"conditional edge from {source!r} names unknown nodes {sorted(unknown)}"
                    )
        if not self.nodes:
            raise GraphValidationError("the graph has no nodes")
        if START not in self.edges and START not in self.branches:
            raise GraphValidationError("no edge from START: add_edge(START, 'first_node')")
        for name in self.nodes:
            if name not in self.edges and name not in self.branches:
                raise GraphValidationError(
                    f"node {name!r} has no outgoing edge: add_edge({name!r}, END) if the flow ends there"
                )
        reachable = self._reachable(START)
        unreachable = sorted(set(self.nodes) - reachable)
        if unreachable:
            raise GraphValidationError(f"nodes not reachable from START: {unreachable}")
        predecessors: dict[str, set[str]] = {}
        for source, targets in self.edges.items():
            for target in targets:
                predecessors.setdefault(target, set()).add(source)
        # A join waits for its static predecessors that lead into it, not for
        # START nor for loop-backs from nodes that the join itself leads to.
        joins = {}
        for node, preds in predecessors.items():
            if node == END:
                continue
            waits = frozenset(preds - {START} - self._reachable(node))
            if len(waits) > 1:
                joins[node] = waits
        self.joins = joins

    def _reachable(self, origin: str) -> set[str]:
        seen: set[str] = set()
        todo = [origin]
        while todo:
            current = todo.pop()
            nexts = list(self.edges.get(current, ()))
            for branch in self.branches.get(current, ()):
                # a condition with no declared targets may go anywhere
                nexts.extend(branch.allowed or self.nodes)
            for target in nexts:
                if target not in seen and target in self.nodes:
                    seen.add(target)
                    todo.append(target)
        return seen

    # -- routing ----------------------------------------------------------------

    def resolve(self, source: str, branch: Branch, result: Any) -> list[str | Send]:
        """Turns a condition's result into target node names and ``Send``s."""
        results = result if isinstance(result, list) else [result]
        targets: list[str | Send] = []
        for item in results:
            if isinstance(item, Send):
                if item.node not in self.nodes:
                    raise InvalidInput(f"condition of {source!r} sent to unknown node {item.node!r}")
                targets.append(item)
                continue
            if item == END:
                continue
            if branch.targets is not None:
                if item not in branch.targets:
                    raise InvalidInput(
                        f"condition of {source!r} returned {item!r}; expected one of {sorted(branch.targets)}"
                    )
                item = branch.targets[item]
                if item == END:
                    continue
            elif branch.allowed and item not in branch.allowed:
                raise InvalidInput(
                    f"condition of {source!r} returned {item!r}; expected one of {sorted(branch.allowed)}"
                )
            if item not in self.nodes:
                raise InvalidInput(f"condition of {source!r} returned unknown node {item!r}")
            targets.append(item)
        return targets

    # -- description ------------------------------------------------------------

    def details(self) -> str:
        lines = ["Nodes:"]
        for node in self.nodes.values():
            flags = [node.kind]
            if node.retry:
                flags.append(f"retry x{node.retry.max_attempts}")
            if node.timeout:
                flags.append(f"timeout {node.timeout:g}s")
            if node.interrupt_before:
                flags.append("interrupt before")
            if node.interrupt_after:
                flags.append("interrupt after")
            if node.name in self.joins:
                flags.append(f"join of {sorted(self.joins[node.name])}")
            lines.append(f"  {node.name} ({', '.join(flags)})")
        lines.append("Edges:")
        for source, targets in self.edges.items():
            lines.extend(f"  {source} -> {target}" for target in targets)
        for source, branches in self.branches.items():
            for branch in branches:
                name = getattr(branch.condition, "__name__", "condition")
                choices = dict(branch.targets) if branch.targets is not None else sorted(branch.allowed)
                lines.append(f"  {source} -> {name}() -> {choices or 'any node'}")
        return "\n".join(lines)

    def edge_list(self) -> list[Edge]:
        """Every edge: static ones, then each condition's possible targets."""
        edges = [Edge(source, target) for source, targets in self.edges.items() for target in targets]
        for source, branches in self.branches.items():
            for branch in branches:
                if branch.targets is not None:
                    edges.extend(Edge(source, target, True, key) for key, target in branch.targets.items())
                else:
                    edges.extend(Edge(source, target, True) for target in sorted(branch.allowed or self.nodes))
        return edges

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the graph (plain text; render it anywhere)."""
        ids = {START: "__start__", END: "__end__"}

        def ref(name: str) -> str:
            return ids.get(name) or "n_" + "".join(c if c.isalnum() else "_" for c in name)

        lines = ["flowchart TD", "  __start__([START])", "  __end__([END])"]
        lines.extend(f'  {ref(name)}["{name}"]' for name in self.nodes)
        for edge in self.edge_list():
            if not edge.conditional:
                lines.append(f"  {ref(edge.source)} --> {ref(edge.target)}")
            elif edge.label is not None:
                lines.append(f'  {ref(edge.source)} -. "{edge.label}" .-> {ref(edge.target)}')
            else:
                lines.append(f"  {ref(edge.source)} -.-> {ref(edge.target)}")
        return "\n".join(lines)


def _kind(func: Callable[..., Any]) -> str:
    # not a callability test (B004): for a callable instance, its __call__ method says what kind it is
    target = func if inspect.isfunction(func) or inspect.ismethod(func) else getattr(func, "__call__", func)  # noqa: B004
    if inspect.isasyncgenfunction(target):
        return NODE_ASYNC_GEN
    if inspect.isgeneratorfunction(target):
        return NODE_GEN
    if inspect.iscoroutinefunction(target):
        return NODE_ASYNC
    return NODE_PLAIN
