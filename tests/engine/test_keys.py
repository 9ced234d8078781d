"""The rule for top-level state keys (flows.engine.keys); every backend applies it alike
(tests/conformance/test_state_keys.py)."""

from __future__ import annotations

from typing import TypedDict

import pytest

from flows.engine import END, START, FlowEngine
from flows.engine.errors import GraphValidationError, InvalidInput
from flows.engine.keys import key_label, key_problem


@pytest.mark.parametrize("key", ["a", "k" * 255, "😀" * 255, "tab\t", "new\nline", "\x7f", " lead", "__interrupt__x"])
def test_accepted_keys(key):
    assert key_problem(key) is None


class Name(str):
    pass


@pytest.mark.parametrize(
    "key, problem",
    [
        (7, "must be strings, not int"),
        (True, "must be strings, not bool"),
        (None, "must be strings, not NoneType"),
        (Name("a"), "must be strings, not Name"),  # stored as text, it would come back a plain str
        ("", "cannot be empty"),
        ("k" * 256, "at most 255 characters, not 256"),
        ("a\0", "NUL"),
        ("a ", "end with a space"),
        ("é\udcff", "lone surrogate"),
    ],
)
def test_refused_keys(key, problem):
    assert problem in key_problem(key)


def test_labels_are_short_and_printable():
    assert key_label(7) == "7"
    assert key_label("a\0b") == "'a\\x00b'"
    label = key_label("k" * 300)
    assert len(label) < 80 and label.startswith("'kkk") and label.endswith("kkk'")


def test_input_from_json_refuses_such_keys_naming_them():
    flow = FlowEngine(dict)
    flow.add_node("n", lambda state: {}).add_edge(START, "n").add_edge("n", END)
    with pytest.raises(InvalidInput, match="NUL") as caught:
        flow.input_from_json({"ok": 1, "a\0b": 2})
    assert caught.value.fields == {"'a\\x00b'": "a state key cannot contain NUL characters"}


def test_a_typed_schema_with_such_a_field_is_refused_at_build():
    Spaced = TypedDict("Spaced", {"name ": str})
    with pytest.raises(GraphValidationError, match="end with a space"):
        FlowEngine(Spaced)
