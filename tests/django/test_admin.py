"""The admin: fast lists on big tables, the session page, and its actions."""

from __future__ import annotations

import asyncio
import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from flows import registry
from flows.engine.checkpointers import Checkpointer, InMemoryStore
from flows.models import Checkpoint, CheckpointWrite, FlowSession
from flows.store import to_datetime
from tests.django.test_checkpointer import CountingExecutor
from tests.flows_fixtures import seed_flow

pytestmark = pytest.mark.django_db(transaction=True)
SEED = "tests.flows_fixtures.seed_flow"
APPROVAL = "tests.django.flows.approval_flow"


@pytest.fixture
def counting():
    executor = CountingExecutor()
    yield executor
    executor.shutdown()


@pytest.fixture(autouse=True)
def flows_registry(settings, counting):
    settings.FLOWS = {
        "REGISTRY": {"seed": SEED, "approval": APPROVAL},
        "CHECKPOINTER": {"BACKEND": "django", "OPTIONS": {"executor": counting}},
    }
    registry.clear_cache()
    yield
    registry.clear_cache()


class RecordingStore(InMemoryStore):
    """Keeps every stored row of a flow run in memory, to bulk-load the database."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []

    async def write(self, lease, record, writes) -> None:
        self.rows.append((record, writes))
        await super().write(lease, record, writes)


def load_session(flow_name: str, session_id: str, turns: int) -> FlowSession:
    """A session with ``2 * turns`` real checkpoints, written with bulk inserts."""
    recorder = RecordingStore()
    flow = seed_flow(Checkpointer(recorder))

    async def run() -> None:
        for i in range(turns):
            await flow.invoke({"messages": [f"message {i}"], "status": f"turn {i}"}, session_id=session_id)

    asyncio.run(run())
    head = recorder.rows[-1][0]
    session = FlowSession.objects.create(
        flow_name=flow_name, session_id=session_id, head_id=head.checkpoint_id,
        last_seq=head.seq, checkpoint_count=len(recorder.rows),
    )
    Checkpoint.objects.bulk_create(
        Checkpoint(session=session, checkpoint_id=r.checkpoint_id, seq=r.seq, parent_id=r.parent_id,
                   created_at=to_datetime(r.created_at), run_id=r.run_id, node=r.node, blob=r.blob)
        for r, _ in recorder.rows
    )
    CheckpointWrite.objects.bulk_create(
        CheckpointWrite(session=session, seq=w.seq, field=w.field, op=w.op, blob=w.blob)
        for _, writes in recorder.rows for w in writes
    )
    return session


def load_filler(sessions: int, checkpoints_each: int) -> None:
    """Rows that only make the tables big (never decoded by the pages under test)."""
    for n in range(sessions):
        session = FlowSession.objects.create(
            flow_name="seed", session_id=f"filler-{n}", checkpoint_count=checkpoints_each
        )
        Checkpoint.objects.bulk_create(
            (Checkpoint(session=session, checkpoint_id=f"f{n}x{i}", seq=i + 1, created_at=to_datetime(0),
                        run_id="r", blob=b"")
             for i in range(checkpoints_each)),
            batch_size=5000,
        )


def text(response) -> str:
    return unescape(response.content.decode())


def queries_for(client, url: str, counting: CountingExecutor) -> tuple[int, list[str]]:
    counting.measure()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    sql = [q["sql"] for q in captured.captured_queries] + counting.queries
    return len(sql), sql


def assert_no_unbounded_count(sql: list[str]) -> None:
    for statement in sql:
        if "COUNT(" in statement.upper():
            assert "LIMIT" in statement.upper(), statement


def test_pages_take_the_same_queries_on_a_small_and_a_large_database(admin_client, counting):
    small = load_session("seed", "small", 5)
    small_list = queries_for(admin_client, reverse("admin:flows_flowsession_changelist"), counting)
    small_page = queries_for(admin_client, reverse("admin:flows_flowsession_change", args=[small.pk]), counting)
    small_checkpoints = queries_for(admin_client, reverse("admin:flows_checkpoint_changelist"), counting)

    big = load_session("seed", "big", 5000)  # 10,000 checkpoints
    load_filler(9, 10_000)  # 100,000 checkpoint rows in all
    assert Checkpoint.objects.count() >= 100_000
    big_list = queries_for(admin_client, reverse("admin:flows_flowsession_changelist"), counting)
    big_page = queries_for(admin_client, reverse("admin:flows_flowsession_change", args=[big.pk]), counting)
    big_checkpoints = queries_for(admin_client, reverse("admin:flows_checkpoint_changelist"), counting)

    assert big_list[0] == small_list[0] <= 8, big_list[1]
    assert big_page[0] == small_page[0] <= 16, big_page[1]
    assert big_checkpoints[0] == small_checkpoints[0] <= 8, big_checkpoints[1]
    for _, sql in (big_list, big_page, big_checkpoints):
        assert_no_unbounded_count(sql)


def test_session_page_shows_state_timeline_and_graph(admin_client):
    session = load_session("seed", "s1", 3)
    response = admin_client.get(reverse("admin:flows_flowsession_change", args=[session.pk]))
    html = text(response)
    assert '"message 2"' in html and '"counter": 3' in html
    assert 'id="flows-timeline"' in html
    # the graph drawn (an inline SVG from the server), its Mermaid source beside it
    graph = html[html.index('id="flows-graph"'):]
    assert graph.index("<svg") < graph.index("</svg>") and 'data-node="count"' in graph
    assert "flowchart TD" in html
    timeline = html[html.index('id="flows-timeline"'):html.index("</table>", html.index('id="flows-timeline"'))]
    # what the last checkpoint changed: counter 2 -> 3; values are JSON ("turn 1", not 'turn 1')
    assert re.search(r'<code>counter</code>\s*: <code class="value old">2</code> → <code class="value new">3</code>',
                     timeline)
    assert ('<code class="value old">"turn 1"</code> → <code class="value new">"turn 2"</code>'
            in timeline)
    # an append shows what was appended, not the whole list struck through
    assert re.search(r'<code>messages</code>\s*appended: <code class="value new added">"message 2"</code>',
                     timeline)
    assert '["message 0", "message 1"' not in timeline
    # each run under its own heading, newest first
    assert timeline.count('<tr class="run">') == 3
    # "Run the flow" comes above the Save / Delete row, its inputs submitting their own form
    assert html.index('id="flows-run"') < html.index('class="submit-row"')
    assert 'form="flows-invoke"' in html and 'id="flows-invoke"' in html


def test_timeline_pages_through_history(admin_client):
    session = load_session("seed", "long", 15)  # 30 checkpoints, 20 per page
    url = reverse("admin:flows_flowsession_change", args=[session.pk])
    first = text(admin_client.get(url))
    older = re.search(r'href="\?before=([0-9a-f]+)"', first).group(1)
    second = text(admin_client.get(f"{url}?before={older}"))
    rows = second[second.index('id="flows-timeline"'):]
    assert rows[: rows.index("</table>")].count("<tr>") - 1 == 10  # minus the header
    assert 'href="?before=' not in second


def test_invoke_from_the_session_page_appends_checkpoints(admin_client):
    session = load_session("seed", "talk", 1)
    before = Checkpoint.objects.filter(session=session).count()
    url = reverse("admin:flows_flowsession_invoke", args=[session.pk])
    response = admin_client.post(url, {"message": "hello from the admin"})
    assert response.status_code == 302
    assert Checkpoint.objects.filter(session=session).count() > before
    page = text(admin_client.get(response.url))
    assert "hello from the admin" in page and '"counter": 2' in page
    response = admin_client.post(url, {"input": '{"status": "json input"}'}, follow=True)
    assert '"status": "json input"' in text(response)


def test_invoke_with_bad_json_is_a_form_error_not_a_crash(admin_client):
    session = load_session("seed", "bad", 1)
    url = reverse("admin:flows_flowsession_invoke", args=[session.pk])
    response = admin_client.post(url, {"input": "{nope"})
    assert response.status_code == 200 and "not valid JSON" in text(response)
    response = admin_client.post(url, {"input": '{"unknown_field": 1}'})
    assert "unknown state field 'unknown_field'" in text(response)


@pytest.mark.parametrize("flow, bad", [("seed", '{"messages": null}'), ("support", '{"turns": "many"}')])
def test_invoke_with_input_the_schema_refuses_is_a_form_error_and_the_session_stays_usable(
    admin_client, settings, monkeypatch, flow, bad
):
    monkeypatch.setenv("FLOWS_DEMO_TOKEN_DELAY", "0")
    settings.FLOWS = {**settings.FLOWS, "REGISTRY": {"seed": "project.flows.seed.build_seed_flow",
                                                     "support": "project.flows.support.build_support_flow"}}
    registry.clear_cache()
    start = reverse("admin:flows_flowsession_start")
    admin_client.post(start, {"flow": flow, "session_id": "t7", "input": '{"messages": []}'})
    session = FlowSession.objects.get(flow_name=flow, session_id="t7")
    before = Checkpoint.objects.filter(session=session).count()
    response = admin_client.post(reverse("admin:flows_flowsession_invoke", args=[session.pk]), {"input": bad})
    page = text(response)
    assert response.status_code == 200 and 'class="errorlist' in page and "invalid values" in page
    assert Checkpoint.objects.filter(session=session).count() == before
    response = admin_client.post(reverse("admin:flows_flowsession_invoke", args=[session.pk]),
                                 {"message": "where is my order"})
    assert response.status_code == 302
    assert Checkpoint.objects.filter(session=session).count() > before


def test_starting_a_session_with_a_refused_input_is_a_form_error(admin_client):
    response = admin_client.post(reverse("admin:flows_flowsession_start"),
                                 {"flow": "seed", "session_id": "t8", "input": '{"counter": "many"}'})
    assert response.status_code == 200 and "Input should be a valid integer" in text(response)
    assert not Checkpoint.objects.filter(session__session_id="t8").exists()


def test_start_a_session_and_answer_its_interrupt(admin_client):
    start = reverse("admin:flows_flowsession_start")
    page = text(admin_client.get(start))
    assert 'value="approval"' in page and 'value="seed"' in page
    response = admin_client.post(start, {"flow": "approval", "session_id": "refund-1", "message": "refund please"})
    assert response.status_code == 302
    session = FlowSession.objects.get(flow_name="approval", session_id="refund-1")
    assert session.status == "interrupted"
    page = text(admin_client.get(response.url))
    assert "approve the refund?" in page and "Pending question" in page
    response = admin_client.post(reverse("admin:flows_flowsession_resume", args=[session.pk]), {"answer": "true"})
    session.refresh_from_db()
    assert session.status == "idle"
    page = text(admin_client.get(response.url))
    assert '"approved": true' in page and "Pending question" not in page


def test_starting_a_session_that_exists_says_it_continued_it(admin_client):
    start = reverse("admin:flows_flowsession_start")
    assert "continues that session" in text(admin_client.get(start))
    admin_client.post(start, {"flow": "seed", "session_id": "again", "message": "one"})
    response = admin_client.post(start, {"flow": "seed", "session_id": "again", "message": "two"}, follow=True)
    page = text(response)
    assert "Session “again” already existed: the input continued it." in page
    assert '"counter": 2' in page


def test_add_redirects_to_start_and_start_validates(admin_client):
    response = admin_client.get(reverse("admin:flows_flowsession_add"))
    assert response.url == reverse("admin:flows_flowsession_start")
    response = admin_client.post(reverse("admin:flows_flowsession_start"), {"flow": "seed", "session_id": "has space"})
    assert response.status_code == 200
    assert "Use 1-255 characters" in text(response)


def test_reset_view_and_action(admin_client):
    one, two = load_session("seed", "r1", 2), load_session("seed", "r2", 2)
    admin_client.post(reverse("admin:flows_flowsession_reset", args=[one.pk]))
    one.refresh_from_db()
    assert (one.checkpoint_count, one.head_id) == (0, None)
    response = admin_client.post(
        reverse("admin:flows_flowsession_changelist"),
        {"action": "reset_sessions", "_selected_action": [two.pk]},
    )
    assert response.status_code == 302
    assert not Checkpoint.objects.filter(session=two).exists()


def test_changelist_filters_and_search(admin_client):
    load_session("seed", "alpha", 1)
    FlowSession.objects.create(flow_name="approval", session_id="beta", status="interrupted")
    url = reverse("admin:flows_flowsession_changelist")
    assert "alpha" not in text(admin_client.get(url, {"flow_name": "approval"}))
    assert "beta" in text(admin_client.get(url, {"status": "interrupted"}))
    page = text(admin_client.get(url, {"q": "alpha"}))
    assert "alpha" in page and "beta" not in page


def test_unregistered_flow_is_a_notice(admin_client):
    session = FlowSession.objects.create(flow_name="retired", session_id="old")
    page = text(admin_client.get(reverse("admin:flows_flowsession_change", args=[session.pk])))
    assert "is not registered" in page


def test_checkpoints_are_read_only_and_decoded(admin_client):
    session = load_session("seed", "ro", 1)
    checkpoint = Checkpoint.objects.filter(session=session).order_by("-seq").first()
    url = reverse("admin:flows_checkpoint_change", args=[checkpoint.pk])
    page = text(admin_client.get(url))
    assert checkpoint.checkpoint_id in page and '"counter": 1' in page
    assert admin_client.post(url, {}).status_code == 403
    assert admin_client.get(reverse("admin:flows_checkpoint_add")).status_code == 403
    assert admin_client.get(reverse("admin:flows_checkpoint_delete", args=[checkpoint.pk])).status_code == 403
