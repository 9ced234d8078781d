"""The read cache: later reads fetch only new writes, and never serve stale data."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

from flows.engine import END, START, FlowEngine
from flows.engine.checkpointers import Checkpointer, InMemoryCheckpointer, InMemoryStore
from flows.engine.checkpointers.readcache import READ_ONLY, SCALARS, Items, ReadCache
from flows.engine.errors import ReadOnlyValue
from tests.flows_fixtures import seed_flow


class RecordingStore(InMemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[dict] = []

    async def read_writes(self, session_id, ranges):
        self.ranges.append(dict(ranges))
        return await super().read_writes(session_id, ranges)


async def test_a_second_read_fetches_only_what_changed():
    checkpointer = Checkpointer(RecordingStore())
    flow = seed_flow(checkpointer)
    for i in range(20):
        await flow.invoke({"messages": [f"m{i}"], "status": "s", "counter": 0}, session_id="c")
    checkpointer.store.ranges.clear()
    state = await flow.get_state("c")
    assert state["messages"] == [f"m{i}" for i in range(20)]
    # the last turn's writes only (the head was read at that turn's start), not 40 checkpoints' worth
    assert checkpointer.store.ranges
    for ranges in checkpointer.store.ranges:
        assert all(hi - lo <= 2 for lo, hi in ranges.values()), ranges


async def test_a_reset_session_never_sees_old_cached_values():
    checkpointer = InMemoryCheckpointer()
    flow = seed_flow(checkpointer)
    for word in ("a", "b", "c"):
        await flow.invoke({"messages": [word], "status": "s", "counter": 0}, session_id="r")
    assert (await flow.get_state("r"))["messages"] == ["a", "b", "c"]
    await flow.reset_session("r")
    for word in ("x", "y", "z", "w"):
        await flow.invoke({"messages": [word], "status": "s", "counter": 0}, session_id="r")
    assert (await flow.get_state("r"))["messages"] == ["x", "y", "z", "w"]


async def test_callers_get_their_own_lists():
    flow = seed_flow(InMemoryCheckpointer())
    await flow.invoke({"messages": ["a"], "status": "s", "counter": 0}, session_id="own")
    first = await flow.get_state("own")
    first["messages"].append("mutated by the caller")
    assert (await flow.get_state("own"))["messages"] == ["a"]


def test_lru_bound_and_upto_rule():
    cache = ReadCache(2)
    cache.put("a", 0, 5, (1,), SCALARS)
    cache.put("b", 0, 5, "text", SCALARS)
    assert cache.get("a", 0, 5) == (5, (1,), SCALARS)
    assert cache.get("a", 0, 4) is None  # covers writes past the target
    assert cache.get("a", 3, 9) is None  # the value from another base
    cache.put("c", 0, 1, ({"x": 2},), READ_ONLY)
    assert cache.get("b", 0, 9) is None  # least recently used went


def test_one_entry_per_field_the_newest_read():
    cache = ReadCache(4)
    cache.put("intent", 7, 7, "billing", SCALARS)
    cache.put("intent", 9, 9, "general", SCALARS)  # set again: replaces, adds nothing
    cache.put("intent", 3, 3, "older", SCALARS)  # a read of an older checkpoint keeps the newer
    assert cache.get("intent", 9, 12) == (9, "general", SCALARS)
    assert cache.get("intent", 7, 12) is None
    assert len(cache._entries) == 1


async def test_a_field_set_at_every_step_does_not_push_other_sessions_out():
    # a router's intent is set on every turn; with the base in the key each turn
    # added an entry, so a busy session pushed the other sessions out of the LRU
    class Chat(TypedDict):
        messages: Annotated[list, operator.add]
        intent: str

    checkpointer = InMemoryCheckpointer(read_cache_size=8)
    flow = FlowEngine(Chat, checkpointer)
    flow.add_node("classify", lambda state: {"intent": f"intent {len(state['messages'])}"})
    flow.add_edge(START, "classify").add_edge("classify", END)
    await flow.invoke({"messages": ["hello"]}, session_id="quiet")
    await flow.get_state("quiet")
    for turn in range(20):
        await flow.invoke({"messages": [f"turn {turn}"]}, session_id="busy")
    cached = {(key[0], key[2]) for key in checkpointer._read_cache._entries}
    assert cached == {("quiet", "messages"), ("quiet", "intent"), ("busy", "messages"), ("busy", "intent")}


async def test_mutable_items_are_never_shared_with_callers():
    class Log(TypedDict):
        log: Annotated[list, operator.add]

    flow = FlowEngine(Log, InMemoryCheckpointer())
    flow.add_node("a", lambda s: {"log": [{"text": "hi"}]}).add_edge(START, "a").add_edge("a", END)
    await flow.invoke({"log": []}, session_id="m")
    first = await flow.get_state("m")
    with pytest.raises(ReadOnlyValue):
        first["log"][0]["text"] = "changed by the caller"  # the engine's reads share them read-only
    own = (await flow.checkpointer.aget("m")).state  # the checkpointer's own API: copies
    own["log"][0]["text"] = "changed by the caller"
    assert type(own["log"][0]) is dict
    assert (await flow.get_state("m"))["log"] == [{"text": "hi"}]
    assert (await flow.checkpointer.aget("m")).state["log"] == [{"text": "hi"}]


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": "hi", "meta": {"tokens": 2}},  # read by the parser as read-only items
        {"role": "user", "content": "see [1]", "parts": [{"text": "hi"}]},  # folded, then made read-only
    ],
    ids=["flat", "with a list inside"],
)
async def test_a_cold_read_shares_read_only_items_and_hands_out_copies(message):
    class Chat(TypedDict):
        messages: Annotated[list, operator.add]

    def build(checkpointer):
        flow = FlowEngine(Chat, checkpointer)
        return flow.add_node("a", lambda s: {"messages": [message]}).add_edge(START, "a").add_edge("a", END)

    store = InMemoryStore()
    for _ in range(3):
        await build(Checkpointer(store)).invoke({"messages": []}, session_id="cold")
    cold = build(Checkpointer(store))  # a worker that never saw the session
    state = await cold.get_state("cold")
    assert state["messages"] == [message] * 3
    with pytest.raises(ReadOnlyValue):
        state["messages"][0]["role"] = "changed by the caller"
    own = (await cold.checkpointer.aget("cold")).state["messages"]
    own[0]["role"] = "changed by the caller"
    assert (await cold.get_state("cold"))["messages"] == [message] * 3


async def test_items_that_cannot_be_read_only_are_copied_for_every_reader():
    class Log(TypedDict):
        log: Annotated[list, operator.add]

    flow = FlowEngine(Log, InMemoryCheckpointer())
    flow.add_node("a", lambda s: {"log": [{"tags": {"a"}}]}).add_edge(START, "a").add_edge("a", END)
    await flow.invoke({"log": []}, session_id="m")
    first = await flow.get_state("m")
    first["log"][0]["tags"].add("changed")  # a set cannot be read-only: the reader's own copy
    assert (await flow.get_state("m"))["log"] == [{"tags": {"a"}}]


def test_a_cached_list_grows_in_place_and_older_entries_keep_their_items():
    cache = ReadCache(4)
    first = Items([1, 2], 2)
    grown = cache.grow(first, [3])
    assert grown.items is first.items and grown.copy() == [1, 2, 3]  # appended, not copied
    assert first.copy() == [1, 2]  # an entry made earlier still means its own items
    other = cache.grow(first, [9])  # a second reader growing the older entry: a copy, never a clash
    assert other.items is not first.items and other.copy() == [1, 2, 9]
    assert grown.copy() == [1, 2, 3]


async def test_reads_of_older_and_newer_checkpoints_interleave_exactly():
    class Chat(TypedDict):
        messages: Annotated[list, operator.add]

    flow = FlowEngine(Chat, InMemoryCheckpointer())
    flow.add_node("reply", lambda s: {"messages": [{"n": len(s["messages"])}]})
    flow.add_edge(START, "reply").add_edge("reply", END)
    for i in range(6):
        await flow.invoke({"messages": [{"user": i}]}, session_id="i")
    history = await flow.list_checkpoints("i", limit=100)  # newest first
    expected = []
    for i in range(8):
        expected += [{"user": i}, {"n": 2 * i + 1}]
    for round_ in range(2):
        for meta in (history[0], history[7], history[3], history[0]):
            state = (await flow.checkpointer.aget("i", meta.checkpoint_id)).state
            length = len(state["messages"])
            assert state["messages"] == expected[:length]
        if round_ == 0:  # the session grows between the two rounds of reads
            for i in range(6, 8):
                await flow.invoke({"messages": [{"user": i}]}, session_id="i")
            history = await flow.list_checkpoints("i", limit=100)
    assert (await flow.get_state("i"))["messages"] == expected


async def test_a_turn_changes_no_list_it_was_given_or_returned_before():
    class Chat(TypedDict):
        messages: Annotated[list, operator.add]

    flow = FlowEngine(Chat, InMemoryCheckpointer())
    flow.add_node("reply", lambda s: {"messages": ["re"]}).add_edge(START, "reply").add_edge("reply", END)
    first = await flow.invoke({"messages": ["a"]}, session_id="t")
    given = ["b"]
    second = await flow.invoke({"messages": given}, session_id="t")
    assert given == ["b"]
    assert first["messages"] == ["a", "re"]  # the input merge appends to the run's own list only
    assert second["messages"] == ["a", "re", "b", "re"]
    assert (await flow.get_state("t"))["messages"] == ["a", "re", "b", "re"]
