"""The benchmark's sections; each ``run(config)`` measures and prints its tables.

engine        µs per node step, no checkpointer
steps         µs per checkpointed node step per backend, next to the raw-write floor, with the
              targets; PostgreSQL commits and WAL flushes per invoke
conversation  a long conversation (dict and str messages): µs per turn at turns 0, 100, 1,000
              (10,000 with --long), head reads cold and warm at those lengths, bytes stored
history       head state and latest 5 checkpoints of one session among many
rest          REST invoke latency and throughput over HTTP, next to the in-process invoke
events        what recording runs costs a checkpointed step; how soon a watcher sees events
durability    flows' durability modes (sync, async, exit) side by side
"""

from __future__ import annotations

from dataclasses import dataclass

from backends import Backend


@dataclass
class Config:
    quick: bool
    backends: dict[str, Backend]  # the rows asked for (--backend), unavailable ones included
    systems: tuple[str, ...]
    long: bool = False  # --long: conversations and head reads out to 10,000 turns
    durable: bool = False  # --durable: the run refuses servers that do not say they are durable
    #: the servers' durability as they report it (machine.durability): durable, fast, mixed, none
    mode: str = "none"

    @property
    def tag(self) -> str:
        """Appended to the title of every table measured on the servers: the mode they said they ran in."""
        return {
            "durable": " [servers durable: fsync on]",
            "fast": " [servers fast: fsync off]",
            "mixed": " [servers mixed: see the header]",
        }.get(self.mode, "")

    def usable(self, names: tuple[str, ...] | None = None) -> list[Backend]:
        """The backends to run (those of ``names`` if given)."""
        return [b for n, b in self.backends.items() if (names is None or n in names) and not b.missing]

    def notes(self, names: tuple[str, ...] | None = None) -> list[str]:
        """Why a backend is skipped, and what each backend row means for the peers."""
        chosen = [b for n, b in self.backends.items() if names is None or n in names]
        return [
            f"{b.name} skipped: {b.missing} (`make bench` sets it)" if b.missing else f"{b.name}: {b.note}"
            for b in chosen
            if b.missing or b.note
        ]

    def systems_of(self, backend: Backend) -> list[str]:
        return [s for s in self.systems if s in backend.systems]


SECTIONS = ("engine", "steps", "conversation", "history", "rest", "events", "durability")


class Failures:
    """Collects a system's failure on a backend as a one-line note instead of stopping the run."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def add(self, backend: str, system: str, error: BaseException) -> None:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        self.notes.append(f"{system} on {backend} failed: {type(error).__name__}: {first[:160]}")
