"""Tagged JSON: exact round trips, registered types only, never pickle."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import pydantic
import pytest

from flows.engine.errors import ReadOnlyValue, SerializationError
from flows.engine.serde import JsonSerializer, flat_array, loads_items, may_hold_tags
from flows.engine.values import ReadOnlyDict


@dataclasses.dataclass
class Point:
    x: int
    when: dt.date


class Order(pydantic.BaseModel):
    id: uuid.UUID
    total: Decimal
    items: list[str]


VALUES = [
    dt.datetime(2026, 11, 27, 10, 30, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2026, 11, 27, 10, 30),
    dt.date(2026, 2, 28),
    dt.time(23, 59, 59, 999),
    uuid.uuid4(),
    Decimal("3.1400"),
    b"\x00binary\xff",
    (1, "two", (3.0, None)),
    {1: "a", (2, 3): "b"},
    {"__flows__": "not a tag"},
    {"set": {1, 2}, "frozen": frozenset({"x"})},
    [True, False, None, 1.5, "ünïcode"],
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_exact_round_trip(value):
    serializer = JsonSerializer()
    loaded = serializer.loads(serializer.dumps(value))
    assert loaded == value and type(loaded) is type(value)


def test_registered_dataclass_and_pydantic_model_round_trip():
    serializer = JsonSerializer(types=[Point, Order])
    value = {"p": Point(1, dt.date(2020, 1, 1)), "o": Order(id=uuid.UUID(int=1), total=Decimal("9.99"), items=["a"])}
    assert serializer.loads(serializer.dumps(value)) == value


def test_unregistered_types_fail_closed_on_save_and_load():
    with pytest.raises(SerializationError, match=r"test_serde\.Point: register it"):
        JsonSerializer().dumps(Point(1, dt.date.today()))
    stored = JsonSerializer(types=[Point]).dumps(Point(1, dt.date.today()))
    with pytest.raises(SerializationError, match="not registered"):
        JsonSerializer().loads(stored)
    with pytest.raises(SerializationError):
        JsonSerializer().dumps(object())
    with pytest.raises(SerializationError, match="neither a dataclass nor a pydantic model"):
        JsonSerializer(types=[dict])


def test_nan_and_corrupt_data_are_clear_errors():
    with pytest.raises(SerializationError):
        JsonSerializer().dumps(float("nan"))
    with pytest.raises(SerializationError, match="not valid JSON"):
        JsonSerializer().loads(b"{oops")
    with pytest.raises(SerializationError, match="unknown tag"):
        JsonSerializer().loads(b'{"__flows__": "pickle", "v": "x"}')


def test_plain_json_stays_plain():
    assert JsonSerializer().dumps({"a": [1, "b"]}) == b'{"a":[1,"b"]}'


def test_loads_decodes_tags_wherever_they_are_and_leaves_lookalike_text_alone():
    serializer = JsonSerializer()
    nested = [{"at": dt.date(2026, 1, 2)}, "plain"]
    assert serializer.loads(serializer.dumps(nested)) == nested
    text = {"note": '{"__flows__": "date", "v": "2026-01-02"}'}  # the tag's text inside a string
    assert serializer.loads(serializer.dumps(text)) == text


def test_loads_items_makes_every_object_read_only_as_it_parses():
    value = [{"role": "user", "content": "hi", "meta": {"tokens": 3}}, "plain", 7, None]
    data = JsonSerializer().dumps(value)
    assert flat_array(data)
    items = loads_items(data)
    assert items == value
    assert type(items[0]) is ReadOnlyDict and type(items[0]["meta"]) is ReadOnlyDict
    with pytest.raises(ReadOnlyValue):
        items[0]["meta"]["tokens"] = 4


@pytest.mark.parametrize(
    "value",
    [
        [{"content": "x", "parts": ["a"]}],  # a list inside: the parser would leave it changeable
        [{"content": "see [1]"}],  # a bracket in a string counts as one: only memchr looks
        [{"at": dt.date(2026, 1, 2)}],  # a tag: from_jsonable must decode it
        {"content": "x"},  # not an array
    ],
    ids=["nested list", "bracket in text", "tag", "object"],
)
def test_flat_array_refuses_what_loads_items_cannot_read_as_is(value):
    assert not flat_array(JsonSerializer().dumps(value))


def test_loads_items_reads_json_flows_did_not_write_and_refuses_what_is_not_json():
    items = loads_items(b'[ {"a": 1} ]\n')  # whitespace: through json.loads
    assert items == [{"a": 1}] and type(items[0]) is ReadOnlyDict
    with pytest.raises(SerializationError, match="not valid JSON"):
        loads_items(b'[{"a": 1}')


def test_may_hold_tags_finds_a_tag_and_passes_text_without_one():
    assert may_hold_tags(JsonSerializer().dumps([{"at": dt.date(2026, 1, 2)}]))
    assert not may_hold_tags(b'[{"content":"no underscore here"}]')
    assert not may_hold_tags(b'[{"content":"snake_case but no tag"}]')
