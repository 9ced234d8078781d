"""A page of history says what each checkpoint changed, old → new, also across compacted chunks."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from flows.engine import END, START, FlowEngine
from flows.engine.checkpointers import InMemoryCheckpointer


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    n: int


def _flow() -> FlowEngine:
    flow = FlowEngine(S, InMemoryCheckpointer())
    flow.add_node("count", lambda s: {"n": s.get("n", 0) + 1, "log": [{"turn": s.get("n", 0)}]})
    return flow.add_edge(START, "count").add_edge("count", END)


async def test_each_entry_shows_old_and_new_values_and_pages_go_back():
    flow = _flow()
    for turn in range(40):  # 80 checkpoints: past the first compacted window
        await flow.invoke({"log": [f"q{turn}"]}, session_id="h")
    page = await flow.history("h", limit=4)
    newest = page.entries[0]
    assert newest.metadata.node == "count"
    by_field = {change.field: change for change in newest.changes}
    assert (by_field["n"].old, by_field["n"].new) == (39, 40)
    assert by_field["log"].is_append and by_field["log"].written == [{"turn": 39}]
    assert by_field["log"].new[-2:] == ["q39", {"turn": 39}] and len(by_field["log"].new) == 80
    older = await flow.history("h", limit=4, before=page.next_before)
    assert older.entries[0].metadata.seq == page.entries[-1].metadata.seq - 1
    last = await flow.history("h", limit=1000)
    first = last.entries[-1]
    assert last.next_before is None and first.metadata.node == "__start__"
    assert [(c.field, c.is_new, c.new) for c in first.changes] == [("log", True, ["q0"])]
