from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
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


def test_input_from_a_file_takes_what_the_argument_list_cannot(run_json, tmp_path):
    big = "x" * (5 * 1024 * 1024)  # over Linux's 128 KiB limit for one argument
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"messages": [big], "status": "file", "counter": 0}), encoding="utf-8")
    state = run_json("flows_invoke", "seed", "f1", "--input", f"@{path}")
    assert state["messages"] == [big] and state["status"] == "file" and state["counter"] == 1


def test_input_from_stdin(run_json):
    def invoke(text: str) -> dict:
        out = StringIO()
        call_command("flows_invoke", "seed", "i1", "--input", "-", stdin=StringIO(text), stdout=out)
        return json.loads(out.getvalue())

    assert invoke('{"messages": ["piped"], "status": "s", "counter": 0}')["counter"] == 1
    assert invoke('{"messages": ["again"]}')["messages"] == ["piped", "again"]
    assert run_json("flows_invoke", "seed", "i1", "--input", '{"messages": ["literal"]}')["counter"] == 3


def test_input_from_the_process_stdin(run_json, monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO('{"messages": ["from a pipe"], "status": "s", "counter": 0}'))
    assert run_json("flows_invoke", "seed", "i2", "--input", "-")["messages"] == ["from a pipe"]


@pytest.mark.parametrize(
    "content, message",
    [(None, r"^--input @\S+missing\.json: cannot read the file: No such file or directory$"),
     ("{bad", r"^--input @\S+bad\.json is not valid JSON: [^\n]+$"),
     (b"\xff\xfe", r"^--input @\S+bad\.json: cannot read the file: 'utf-8' codec [^\n]+$"),
     ("[1]", "must be a JSON object")],
)
def test_a_bad_input_file_is_a_one_line_error_naming_it(run, tmp_path, content, message):
    path = tmp_path / ("missing.json" if content is None else "bad.json")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("flows_invoke", "seed", "b1", "--input", f"@{path}")


def test_bad_json_on_stdin_is_a_one_line_error():
    with pytest.raises(CommandError, match=r"^--input - \(stdin\) is not valid JSON: [^\n]+$"):
        call_command("flows_invoke", "seed", "b2", "--input", "-", stdin=StringIO("{bad"), stdout=StringIO())


FLUSH = object()


class Writes(StringIO):
    """Stdout that keeps the order of writes and flushes."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list = []

    def write(self, text: str) -> int:
        self.log.append(text)
        return super().write(text)

    def flush(self) -> None:
        self.log.append(FLUSH)


@pytest.fixture
def streaming(settings):
    from flows import registry

    settings.FLOWS = {"REGISTRY": {"stream": "tests.api.flows.streaming_flow", "chat": "tests.api.flows.chat_flow",
                                   "approval": "tests.django.flows.approval_flow"}}
    registry.clear_cache()


def test_stream_prints_each_chunk_as_it_arrives_then_the_state(streaming):
    from flows.models import Run

    out = Writes()
    call_command("flows_invoke", "stream", "st1", "--input", '{"messages": ["hi"]}', "--stream", stdout=out)
    *chunks, state = out.log
    assert chunks == ["one ", FLUSH, "two ", FLUSH, "three", FLUSH, "\n"]  # each flushed before the next
    assert json.loads(state) == {"messages": ["hi", "one two three"]}
    assert out.getvalue().startswith("one two three\n{")
    assert list(Run.objects.filter(session_id="st1").values_list("origin", "status")) == [("command", "succeeded")]


def test_streamed_state_is_the_state_invoke_prints(streaming, run_json):
    def without_ids(state: dict) -> dict:  # question ids name the run
        return {**state, "__interrupt__": [{**q, "id": None} for q in state["__interrupt__"]]}

    streamed = run_json("flows_invoke", "approval", "a1", "--input", '{"messages": ["refund"]}', "--stream")
    invoked = run_json("flows_invoke", "approval", "a2", "--input", '{"messages": ["refund"]}')
    assert without_ids(streamed) == without_ids(invoked)
    assert streamed["__interrupt__"][0]["value"] == {"question": "approve the refund?"}  # a flow with no chunks
    state = run_json("flows_invoke", "approval", "a1", "--resume", "true", "--stream")
    assert state["approved"] is True and "__interrupt__" not in state


def test_a_streamed_run_that_fails_is_a_one_line_command_error(streaming, run):
    with pytest.raises(CommandError, match=r"^NodeError: [^\n]*asked to fail[^\n]*$"):
        run("flows_invoke", "chat", "c1", "--input", '{"messages": ["hi"], "fail": true}', "--stream")
