from __future__ import annotations

import pytest
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db(transaction=True)


def test_reset_deletes_the_checkpoints(run):
    run("flows_invoke", "seed", "s1", "--input", '{"counter": 0}')
    assert "2 checkpoint(s) deleted" in run("flows_reset", "seed", "s1")
    with pytest.raises(CommandError, match="has no checkpoint"):
        run("flows_state", "seed", "s1")


@pytest.mark.parametrize("args, message", [(("nope", "s1"), "no flow named"), (("seed", "bad id"), "InvalidSessionId")])
def test_errors(run, args, message):
    with pytest.raises(CommandError, match=message):
        run("flows_reset", *args)
