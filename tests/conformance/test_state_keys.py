"""Top-level state keys under a ``dict`` schema, against every backend.

A key is stored as text (the ``field`` column, ``VARCHAR(255)``, on SQL and
the ORM; part of a key on Redis), so one that some backend cannot store or
give back as it was is refused the same way everywhere: ``InvalidInput``
before anything is written, whichever way it arrives (the input,
``update_state``, a node's update). What is accepted round-trips exactly on
every backend, read back by a second checkpointer where the data outlives it.
"""

from __future__ import annotations

import uuid

import pytest

from flows.engine import END, START, FlowEngine
from flows.engine.errors import InvalidInput, NodeError
from flows.engine.keys import key_label

#: Keys that cannot round-trip on some backend, and what the error says.
BAD_KEYS = [
    (7, "must be strings"),  # would come back as '7', next to a later 7
    (("a", 1), "must be strings"),
    ("k" * 256, "at most 255 characters"),  # VARCHAR(255) on PostgreSQL, MySQL, the ORM
    ("a\0b", "NUL"),  # PostgreSQL text cannot hold NUL
    ("", "cannot be empty"),
    ("name ", "end with a space"),  # MySQL/MariaDB compare 'name ' equal to 'name'
    ("\ud800", "valid Unicode"),  # UTF-8 cannot encode a lone surrogate
]

#: Keys at the edges of what is accepted, which every backend must keep apart.
GOOD_KEYS = ["k" * 255, "😀" * 255, "tab\there", "line\nbreak", "\x01ctl", " lead", "a", "A", "é", "e\u0301"]


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def echo_flow(checkpointer, node=lambda state: {"seen": True}):
    flow = FlowEngine(dict, checkpointer)
    flow.add_node("n", node)
    flow.add_edge(START, "n").add_edge("n", END)
    return flow


async def test_keys_that_cannot_round_trip_are_refused_as_input_and_nothing_is_stored(checkpointer):
    flow = echo_flow(checkpointer)
    for key, problem in BAD_KEYS:
        session_id = sid()
        with pytest.raises(InvalidInput, match=problem) as caught:
            await flow.invoke({"ok": 1, key: "value"}, session_id=session_id)
        assert list(caught.value.fields) == [key_label(key)]
        assert await checkpointer.aget(session_id) is None
        # the session was never touched: a good call on it works
        assert await flow.invoke({"ok": 2}, session_id=session_id) == {"ok": 2, "seen": True}


async def test_keys_that_cannot_round_trip_are_refused_by_update_state(checkpointer):
    flow = echo_flow(checkpointer)
    session_id = sid()
    await flow.invoke({"ok": 1}, session_id=session_id)
    head = await checkpointer.aget_metadata(session_id)
    for key, problem in BAD_KEYS:
        with pytest.raises(InvalidInput, match=problem):
            await flow.update_state(session_id, {key: "value"})
    assert (await checkpointer.aget_metadata(session_id)).checkpoint_id == head.checkpoint_id
    assert await flow.get_state(session_id) == {"ok": 1, "seen": True}


async def test_a_node_writing_such_a_key_fails_and_saves_nothing_of_it(checkpointer):
    for key, problem in BAD_KEYS:
        flow = echo_flow(checkpointer, lambda state, key=key: {"seen": True, key: "value"})
        session_id = sid()
        with pytest.raises(NodeError, match=problem) as caught:
            await flow.invoke({"ok": 1}, session_id=session_id)
        assert isinstance(caught.value.__cause__, InvalidInput)
        # the input was saved, the node's update was not
        assert await flow.get_state(session_id) == {"ok": 1}


async def test_integer_keys_are_refused_not_turned_into_strings(checkpointer):
    """The probe's case: ``{7: "seven"}`` then ``{7: "SEVEN"}`` read back as ``{'7': 'seven', 7: 'SEVEN'}``."""
    flow = echo_flow(checkpointer)
    session_id = sid()
    with pytest.raises(InvalidInput, match="must be strings"):
        await flow.invoke({7: "seven"}, session_id=session_id)
    await flow.invoke({"7": "seven"}, session_id=session_id)
    with pytest.raises(InvalidInput, match="must be strings"):
        await flow.invoke({7: "SEVEN"}, session_id=session_id)
    assert await flow.get_state(session_id) == {"7": "seven", "seen": True}


async def test_accepted_keys_and_nested_non_string_keys_round_trip_exactly(backend, durable):
    state = {key: f"value of {key!r}" for key in GOOD_KEYS}
    # nested keys are the serializer's: int and tuple keys come back as they were
    state["nested"] = {7: "seven", "7": "string seven", (1, 2): [{3: "three"}]}
    writer = backend.create()
    try:
        session_id = sid()
        await echo_flow(writer).invoke(state, session_id=session_id)
        await echo_flow(writer).invoke({"nested": {7: "SEVEN", "7": "string seven"}}, session_id=session_id)
    finally:
        if hasattr(writer, "aclose"):
            await writer.aclose()
    reader = backend.create() if durable else writer
    try:
        expected = {**state, "nested": {7: "SEVEN", "7": "string seven"}, "seen": True}
        assert await echo_flow(reader).get_state(session_id) == expected
    finally:
        if reader is not writer and hasattr(reader, "aclose"):
            await reader.aclose()


async def test_a_state_of_many_keys_round_trips(backend, durable):
    # every key is a field read by the cold read below: SQLite refuses a query
    # of more than 500 compound SELECTs or an expression 1,000 deep
    state = {f"key {i:04}": i for i in range(700)}
    writer = backend.create()
    try:
        session_id = sid()
        await echo_flow(writer).invoke(state, session_id=session_id)
        await echo_flow(writer).invoke({"key 0001": "changed"}, session_id=session_id)
    finally:
        if hasattr(writer, "aclose"):
            await writer.aclose()
    reader = backend.create() if durable else writer
    try:
        assert await echo_flow(reader).get_state(session_id) == {**state, "key 0001": "changed", "seen": True}
    finally:
        if reader is not writer and hasattr(reader, "aclose"):
            await reader.aclose()
