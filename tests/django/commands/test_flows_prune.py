from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from flows.management.helpers import parse_duration

pytestmark = pytest.mark.django_db(transaction=True)


def grow(run, session: str, turns: int) -> None:
    for _ in range(turns):
        run("flows_invoke", "seed", session, "--input", '{"messages": ["x"]}')


def test_keep_prunes_every_session_and_keeps_heads(run, run_json):
    grow(run, "a", 3)
    grow(run, "b", 2)
    out = run("flows_prune", "--keep", "1")
    assert "seed: 8 checkpoint(s) deleted" in out and "Pruned 8 checkpoint(s)." in out  # (6 - 1) + (4 - 1)
    assert run_json("flows_state", "seed", "a")["messages"] == ["x", "x", "x"]


def test_one_session_older_than(run):
    grow(run, "a", 2)
    assert "seed: 0 checkpoint(s)" in run("flows_prune", "--flow", "seed", "--session", "a", "--older-than", "1h")
    assert "seed: 3 checkpoint(s)" in run("flows_prune", "--flow", "seed", "--session", "a", "--older-than", "0")


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "give --keep and/or --older-than"),
        (("--keep", "0"), "--keep must be at least 1"),
        (("--older-than", "soon"), "is not a duration"),
        (("--session", "a"), "--session needs --flow"),
        (("--flow", "nope", "--keep", "1"), "no flow named"),
    ],
)
def test_errors(run, args, message):
    with pytest.raises(CommandError, match=message):
        run("flows_prune", *args)


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("45s", 45), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("1.5h", 5400)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
