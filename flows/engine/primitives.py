"""The graph's reserved names and the ``Send`` instruction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

START = "__start__"
END = "__end__"
#: the node name of a checkpoint that saved a call's input (or answer) onto an unfinished run
INPUT_NODE = "__input__"
RESERVED = frozenset({START, END, INPUT_NODE, "__update__", "__interrupt__"})


@dataclass(frozen=True, slots=True)
class Send:
    """Run ``node`` once with ``state`` as its input instead of the flow's state.

    Returned (alone or in a list) by a conditional edge to fan one node out over
    items known only at run time; the branches' outputs merge through reducers.
    """

    node: str
    state: Any
