from __future__ import annotations

import pytest
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db(transaction=True)


def test_state_and_history(run, run_json):
    run("flows_invoke", "seed", "s1", "--input", '{"messages": ["a"], "status": "x", "counter": 0}')
    assert run_json("flows_state", "seed", "s1") == {"messages": ["a"], "status": "x", "counter": 1}
    out = run("flows_state", "seed", "s1", "--history", "5")
    assert "step 1  count  updated: counter" in out


def test_state_at_a_checkpoint(run, run_json):
    from flows import registry

    run("flows_invoke", "seed", "s1", "--input", '{"messages": ["a"], "counter": 0}')
    run("flows_invoke", "seed", "s1", "--input", '{"messages": ["b"]}')
    oldest = registry.get_flow("seed").sync.list_checkpoints("s1", limit=10)[-1]
    assert run_json("flows_state", "seed", "s1", "--checkpoint", oldest.checkpoint_id)["messages"] == ["a"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope", "s1"), "no flow named"),
        (("seed", "unknown"), "has no checkpoint"),
        (("seed", "s1", "--checkpoint", "missing"), "CheckpointNotFound"),
        (("seed", "s1", "--history", "-1"), "--history"),
    ],
)
def test_errors(run, args, message):
    run("flows_invoke", "seed", "s1", "--input", "{}")
    with pytest.raises(CommandError, match=message):
        run("flows_state", *args)
