"""Deltas: growth is stored as an extend, anything else as a set; folding is exact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flows.engine.checkpointers import delta
from flows.engine.checkpointers.readcache import READ_ONLY, SCALARS
from flows.engine.checkpointers.types import EXTEND, SET, Change
from flows.engine.serde import DEFAULT_SERIALIZER
from flows.engine.values import ReadOnlyDict


def test_diff_detects_growth_only():
    assert delta.diff([1, 2], [1, 2, 3]) == Change(EXTEND, [3])
    assert delta.diff("ab", "abcd") == Change(EXTEND, "cd")
    assert delta.diff("ab", "ab") == Change(SET, "ab")  # unchanged: no empty extend for reads to fold
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



def _raw(op, value):
    return op, DEFAULT_SERIALIZER.dumps(value)


@given(st.text(), st.lists(st.text(), min_size=2))
def test_fold_raw_joins_string_extends_exactly(first, parts):
    writes = [_raw(SET, first)] + [_raw(EXTEND, part) for part in parts]
    assert delta.fold_raw(writes, DEFAULT_SERIALIZER.loads) == first + "".join(parts)


def test_fold_raw_of_escapes_quotes_and_mixed_writes():
    writes = [_raw(SET, 'say "hi"\\'), _raw(EXTEND, "\u00e9\n\u2028"), _raw(EXTEND, '\\"')]
    assert delta.fold_raw(writes, DEFAULT_SERIALIZER.loads) == 'say "hi"\\' + "\u00e9\n\u2028" + '\\"'
    lists = [_raw(SET, [{"a": 1}]), _raw(EXTEND, []), _raw(EXTEND, [(1, 2)]), _raw(EXTEND, ["x"])]
    assert delta.fold_raw(lists, DEFAULT_SERIALIZER.loads) == [{"a": 1}, (1, 2), "x"]
    mixed = [_raw(SET, "a"), _raw(EXTEND, "b"), _raw(SET, "c"), _raw(EXTEND, "d")]
    assert delta.fold_raw(mixed, DEFAULT_SERIALIZER.loads) == "cd"


def test_read_only_items_folds_a_list_field_into_read_only_items_and_their_kind():
    messages = [_raw(SET, [{"role": "user", "content": "a"}]), _raw(EXTEND, []), _raw(EXTEND, [{"role": "bot"}])]
    items, kind = delta.read_only_items(messages)
    assert items == [{"role": "user", "content": "a"}, {"role": "bot"}] and kind == READ_ONLY
    assert all(type(item) is ReadOnlyDict for item in items)
    assert delta.read_only_items([_raw(SET, ["a"]), _raw(EXTEND, [1, None])]) == (["a", 1, None], SCALARS)


def test_read_only_items_leaves_what_it_cannot_read_to_fold_raw():
    assert delta.read_only_items([_raw(SET, "text"), _raw(EXTEND, "more")]) is None
    assert delta.read_only_items([_raw(SET, [{"a": 1}]), _raw(EXTEND, [{"b": [2]}])]) is None
    assert delta.read_only_items([_raw(SET, []), _raw(SET, ["x"])]) is None  # the caller folds from the last set
    assert delta.read_only_items([_raw(EXTEND, ["x"])]) is None  # no set: fold_raw reports it


def test_may_cover_is_true_exactly_for_the_seqs_a_chunk_can_hold():
    # a chunk is stored at its run's first seq and ends within that seq's window
    span = delta.SPAN
    for chunk_seq in (0, 5, span, span + 7, 3 * span - 1):
        end = delta.window_start(chunk_seq) + span - 1
        holdable = [seq for seq in range(4 * span) if delta.may_cover(chunk_seq, seq)]
        assert holdable == list(range(chunk_seq, end + 1))
        window = delta.chunk([(seq, b'["x"]') for seq in range(chunk_seq, end + 1)])
        assert window is not None
        # every seq it does hold is one may_cover admits
        assert all(delta.may_cover(chunk_seq, seq) for seq, _ in delta.chunk_writes(window, 0, 4 * span))
