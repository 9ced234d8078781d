"""Deltas: growth is stored as an extend, anything else as a set; folding is exact."""

from __future__ import annotations

from flows.engine.checkpointers import delta
from flows.engine.checkpointers.types import EXTEND, SET, Change


def test_diff_detects_growth_only():
    assert delta.diff([1, 2], [1, 2, 3]) == Change(EXTEND, [3])
    assert delta.diff("ab", "abcd") == Change(EXTEND, "cd")
    assert delta.diff([1, 2], [2, 3]) == Change(SET, [2, 3])
    assert delta.diff([], [1]) == Change(SET, [1])
    assert delta.diff(delta.MISSING, [1]) == Change(SET, [1])
    assert delta.diff((1,), (1, 2)) == Change(SET, (1, 2))
    assert delta.diff("ab", ["a", "b"]) == Change(SET, ["a", "b"])


def test_diff_needs_the_same_objects_not_equal_ones():
    item = {"text": "hi"}
    old = [item]
    assert delta.diff(old, old + [2]) == Change(EXTEND, [2])
    assert delta.diff(old, [{"text": "hi"}, 2]) == Change(SET, [{"text": "hi"}, 2])
    assert delta.diff([1], [1.0, 2.5]) == Change(SET, [1.0, 2.5])  # 1 == 1.0, yet not the same value
    old.append(3)
    assert delta.diff(old, old) == Change(SET, old)  # changed in place: written whole


def test_appended_is_o_of_the_update_and_refuses_in_place_growth():
    old = [1, 2]
    assert delta.appended(old, old + [3]) == Change(EXTEND, [3])
    old.extend([3])
    assert delta.appended(old, old) == Change(SET, [1, 2, 3])


def test_fold_applies_writes_in_order():
    assert delta.fold([(SET, [1]), (EXTEND, [2]), (EXTEND, [3, 4])]) == [1, 2, 3, 4]
    assert delta.fold([(SET, "a"), (EXTEND, "b"), (SET, "x"), (EXTEND, "y")]) == "xy"
    assert delta.fold([(SET, 5)]) == 5


def test_fold_does_not_alias_the_stored_list():
    base = [1]
    folded = delta.fold([(SET, base), (EXTEND, [2])])
    assert folded == [1, 2] and base == [1]

