"""Read-only state items: they read like plain dicts and lists, refuse change, and copy to plain ones."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle

import pytest

from flows.engine.errors import ReadOnlyValue
from flows.engine.serde import JsonSerializer
from flows.engine.values import NotReadOnly, ReadOnlyDict, ReadOnlyList, flat_dicts, fresh, read_only

MESSAGE = {"role": "user", "content": "hi", "parts": [{"type": "text", "text": "hi"}], "at": dt.date(2026, 1, 2)}


def test_read_only_reads_like_the_plain_value():
    item = read_only(MESSAGE)
    assert isinstance(item, dict) and item == MESSAGE and item["parts"][0]["text"] == "hi"
    assert type(item["parts"]) is ReadOnlyList and type(item["parts"][0]) is ReadOnlyDict
    assert item["at"] is MESSAGE["at"]  # immutable values are shared as they are
    assert json.dumps(read_only({"a": [1, {"b": 2}]})) == '{"a": [1, {"b": 2}]}'
    assert type(MESSAGE["parts"]) is list  # the value given is left as it was


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.__setitem__("role", "x"),
        lambda d: d.__delitem__("role"),
        lambda d: d.update(role="x"),
        lambda d: d.setdefault("new", 1),
        lambda d: d.pop("role"),
        lambda d: d.popitem(),
        lambda d: d.clear(),
        lambda d: d.__ior__({"x": 1}),
        lambda d: d["parts"].append({}),
        lambda d: d["parts"].extend([{}]),
        lambda d: d["parts"].insert(0, {}),
        lambda d: d["parts"].__setitem__(0, {}),
        lambda d: d["parts"].__delitem__(0),
        lambda d: d["parts"].pop(),
        lambda d: d["parts"].remove(d["parts"][0]),
        lambda d: d["parts"].sort(),
        lambda d: d["parts"].reverse(),
        lambda d: d["parts"].clear(),
        lambda d: d["parts"].__iadd__([1]),
        lambda d: d["parts"][0].__setitem__("text", "changed"),
    ],
)
def test_every_change_in_place_is_refused_and_changes_nothing(change):
    item = read_only(MESSAGE)
    with pytest.raises(ReadOnlyValue, match="read-only") as refused:
        change(item)
    assert isinstance(refused.value, TypeError)  # what Python raises for other read-only containers
    assert item == MESSAGE


@pytest.mark.parametrize("make_copy", [dict, lambda d: d.copy(), copy.copy, copy.deepcopy, fresh,
                                       lambda d: pickle.loads(pickle.dumps(d)), lambda d: d | {}])
def test_copies_are_plain_and_changeable(make_copy):
    item = read_only(MESSAGE)
    copied = make_copy(item)
    assert type(copied) is dict and copied == MESSAGE
    copied["role"] = "assistant"
    assert item["role"] == "user"


def test_deep_copies_are_plain_all_the_way_down():
    copied = copy.deepcopy(read_only(MESSAGE))
    assert type(copied["parts"]) is list and type(copied["parts"][0]) is dict
    copied["parts"][0]["text"] = "changed"
    assert list(read_only([1, 2])) == [1, 2] and type(copy.copy(read_only([1]))) is list


def test_values_that_cannot_be_read_only_are_named():
    with pytest.raises(NotReadOnly, match="set"):
        read_only({"tags": {"a"}})


def test_the_serializer_round_trips_read_only_values_as_plain_ones():
    serializer = JsonSerializer()
    value = read_only({"a": [1, {"b": (2, 3)}], 7: "seven"})
    back = serializer.loads(serializer.dumps(value))
    assert back == {"a": [1, {"b": (2, 3)}], 7: "seven"} and type(back) is dict


@pytest.mark.parametrize(
    "items, flat",
    [
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "n": 1}], True),
        ([{"role": "user", "content": "hi"}, "a plain string"], False),
        ([{"role": "user", "tool_calls": [{"id": 1}]}], False),
        ([{"role": "user", "meta": {"lang": "en"}}], False),
        ([{"at": dt.date(2026, 1, 1)}], False),  # read-only already, but not among the scalars it checks
        ([], False),
    ],
)
def test_flat_dicts_says_when_each_item_can_be_made_read_only_as_is(items, flat):
    assert flat_dicts(items) is flat
    if flat:  # then ReadOnlyDict of each item is exactly what read_only makes of it
        assert [ReadOnlyDict(item) for item in items] == [read_only(item) for item in items]
        assert all(type(read_only(item)) is ReadOnlyDict for item in items)
