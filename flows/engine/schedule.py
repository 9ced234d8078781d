"""A run's to-do list, stored in every checkpoint so a run resumes exactly.

``current`` holds the tasks of the superstep in progress that have not
completed; ``following`` the tasks already scheduled for the next superstep;
``arrivals`` the predecessors each join has heard from; ``after`` the
``interrupt_after`` pauses owed by completed nodes, until they are answered;
``base`` the checkpoint the superstep in progress started from (its tasks'
input), so a branch re-run after an interrupt or a crash gets the same input. The stored schedule is
always normalised: an empty ``current`` means the run has finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .ids import new_id

NO_ARG: Any = object()


@dataclass(slots=True)
class Task:
    node: str
    id: str = field(default_factory=new_id)
    arg: Any = NO_ARG  # the input of a ``Send`` branch
    answers: list[Any] = field(default_factory=list)  # resume values, in interrupt() order
    before_ok: bool = False  # its interrupt_before pause was answered

    def to_json(self, to_jsonable: Callable[[Any], Any]) -> dict[str, Any]:
        data: dict[str, Any] = {"node": self.node, "id": self.id}
        if self.arg is not NO_ARG:
            data["arg"] = to_jsonable(self.arg)
        if self.answers:
            data["answers"] = to_jsonable(self.answers)
        if self.before_ok:
            data["before_ok"] = True
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(
            data["node"],
            data["id"],
            data.get("arg", NO_ARG),
            list(data.get("answers", ())),
            data.get("before_ok", False),
        )


@dataclass(slots=True)
class Schedule:
    step: int = 0
    current: list[Task] = field(default_factory=list)
    following: list[Task] = field(default_factory=list)
    arrivals: dict[str, list[str]] = field(default_factory=dict)
    after: list[dict[str, Any]] = field(default_factory=list)
    base: str | None = None

    def names(self) -> tuple[str, ...]:
        """The nodes still to run, each once, in schedule order."""
        current, following = self.current, self.following
        if not following and len(current) <= 1:  # a chain's step: no list to build
            return (current[0].node,) if current else ()
        return tuple(dict.fromkeys(t.node for t in current + following))

    def schedule(self, task: Task) -> None:
        """Adds a task to the next superstep; a plain node is triggered once per superstep."""
        if task.arg is NO_ARG and any(t.node == task.node and t.arg is NO_ARG for t in self.following):
            return
        self.following.append(task)

    def normalise(self) -> None:
        """Starts the next superstep once the current one is done.

        Joins still waiting on predecessors that will not come (skipped by a
        condition) fire when nothing else is left, so a run never stalls.
        """
        if self.current:
            return
        if self.following:
            self.current, self.following = self.following, []
        elif self.arrivals:
            self.current = [Task(node) for node in self.arrivals]
            self.arrivals = {}
        else:
            return
        self.step += 1
        self.base = None

    def to_json(self, to_jsonable: Callable[[Any], Any]) -> dict[str, Any]:
        """JSON-ready data; ``to_jsonable`` (the flow's serializer) tags user values."""
        return {
            "step": self.step,
            "current": [t.to_json(to_jsonable) for t in self.current],
            "following": [t.to_json(to_jsonable) for t in self.following],
            "arrivals": self.arrivals,
            "after": self.after,
            "base": self.base,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        if not data:
            return cls()
        return cls(
            data.get("step", 0),
            [Task.from_json(t) for t in data.get("current", ())],
            [Task.from_json(t) for t in data.get("following", ())],
            {k: list(v) for k, v in data.get("arrivals", {}).items()},
            list(data.get("after", ())),
            data.get("base"),
        )
