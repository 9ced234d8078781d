from __future__ import annotations

import pytest
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db(transaction=True)


def test_invoke_then_continue(run_json):
    state = run_json("flows_invoke", "seed", "s1", "--input", '{"messages": ["hi"], "status": "start", "counter": 0}')
    assert state == {"messages": ["hi"], "status": "start", "counter": 1}
    state = run_json("flows_invoke", "seed", "s1", "--input", '{"messages": ["again"]}')
    assert state["messages"] == ["hi", "again"] and state["counter"] == 2
    assert run_json("flows_invoke", "seed", "s1")["counter"] == 3  # no input: continue


def test_resume_answers_the_pending_question(run_json):
    state = run_json("flows_invoke", "approval", "r1", "--input", '{"messages": ["refund"]}')
    assert state["__interrupt__"][0]["value"] == {"question": "approve the refund?"}
    state = run_json("flows_invoke", "approval", "r1", "--resume", "true")
    assert state["approved"] is True and "__interrupt__" not in state


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope", "s1"), "no flow named 'nope'"),
        (("seed", "s1", "--input", "{bad"), "--input is not valid JSON"),
        (("seed", "s1", "--input", "[1]"), "must be a JSON object"),
        (("seed", "s1", "--resume", "{bad"), "--resume is not valid JSON"),
        (("seed", "has space", "--input", "{}"), "InvalidSessionId"),
        (("seed", "s2", "--input", '{"nope": 1}'), "InvalidInput"),
        (("seed", "s3", "--resume", "1"), "no pending interrupt"),
    ],
)
def test_errors_are_command_errors(run, args, message):
    with pytest.raises(CommandError, match=message):
        run("flows_invoke", *args)


@pytest.mark.parametrize("flow, bad, field", [("seed", '{"messages": null}', "messages"),
                                              ("support", '{"turns": "many"}', "turns")])
def test_input_the_schema_refuses_is_a_command_error_and_the_session_stays_usable(
    run_json, run, settings, monkeypatch, flow, bad, field
):
    from flows import registry
    from flows.models import Checkpoint

    monkeypatch.setenv("FLOWS_DEMO_TOKEN_DELAY", "0")
    settings.FLOWS = {"REGISTRY": {"seed": "project.flows.seed.build_seed_flow",
                                   "support": "project.flows.support.build_support_flow"}}
    registry.clear_cache()
    run_json("flows_invoke", flow, "t7", "--input", '{"messages": ["hello"]}')
    before = Checkpoint.objects.filter(session__session_id="t7").count()
    with pytest.raises(CommandError, match=f"InvalidInput: .*'{field}'"):
        run("flows_invoke", flow, "t7", "--input", bad)
    assert Checkpoint.objects.filter(session__session_id="t7").count() == before
    state = run_json("flows_invoke", flow, "t7", "--input", '{"messages": ["where is my order"]}')
    assert len(state["messages"]) >= 3


def test_the_commands_runs_are_recorded_as_the_commands(run_json):
    from flows.models import Run

    run_json("flows_invoke", "seed", "rec", "--input", '{"messages": ["hi"], "status": "s", "counter": 0}')
    assert list(Run.objects.filter(session_id="rec").values_list("origin", "status", "last_event")) == [
        ("command", "succeeded", 4)]
