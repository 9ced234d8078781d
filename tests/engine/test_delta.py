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


def test_fold_applies_writes_in_order():
    assert delta.fold([(SET, [1]), (EXTEND, [2]), (EXTEND, [3, 4])]) == [1, 2, 3, 4]
    assert delta.fold([(SET, "a"), (EXTEND, "b"), (SET, "x"), (EXTEND, "y")]) == "xy"
    assert delta.fold([(SET, 5)]) == 5


def test_fold_does_not_alias_the_stored_list():
    base = [1]
    folded = delta.fold([(SET, base), (EXTEND, [2])])
    assert folded == [1, 2] and base == [1]
