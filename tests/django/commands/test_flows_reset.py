from __future__ import annotations

import pytest
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db(transaction=True)


def test_reset_deletes_the_checkpoints(run):
    run("flows_invoke", "seed", "s1", "--input", '{"counter": 0}')
    assert "2 checkpoint(s) deleted" in run("flows_reset", "seed", "s1")
    with pytest.raises(CommandError, match="has no checkpoint"):
        run("flows_state", "seed", "s1")


def test_resetting_a_session_that_does_not_exist_fails(run):
    with pytest.raises(CommandError, match=r"^no session 'ghost' of flow 'seed': nothing to reset$"):
        run("flows_reset", "seed", "ghost")
    run("flows_invoke", "seed", "s1", "--input", '{"counter": 0}')
    assert "2 checkpoint(s) deleted" in run("flows_reset", "seed", "s1")
    with pytest.raises(CommandError, match="no session 's1'"):  # reset already: nothing left
        run("flows_reset", "seed", "s1")


def test_a_missing_session_exits_non_zero_with_one_line(capsys):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "flows_reset", "seed", "ghost", "--skip-checks"])
    assert exited.value.code == 1
    assert capsys.readouterr().err.splitlines() == ["CommandError: no session 'ghost' of flow 'seed': nothing to reset"]


@pytest.mark.parametrize("args, message", [(("nope", "s1"), "no flow named"), (("seed", "bad id"), "InvalidSessionId")])
def test_errors(run, args, message):
    with pytest.raises(CommandError, match=message):
        run("flows_reset", *args)
