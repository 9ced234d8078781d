"""GET /api/flows/ and /api/flows/{flow}/: what each registered flow is."""

from __future__ import annotations

from tests.api.conftest import FLOWS, assert_error


def test_the_list_names_every_registered_flow_with_its_graph_and_fields(api):
    response = api.get("/api/flows/")
    assert response.status_code == 200
    flows = {flow["name"]: flow for flow in response.json()}
    assert sorted(flows) == sorted(FLOWS)
    seed = flows["seed"]
    assert seed["description"].startswith("The seed page's AppState flow")
    assert seed["nodes"] == ["count", "acknowledge"]
    assert {"source": "__start__", "target": "count", "conditional": False, "label": None} in seed["edges"]
    assert seed["mermaid"].startswith("flowchart TD")
    assert seed["state_fields"] == [
        {"name": "messages", "type": "list[str]", "reducer": "operator.add"},
        {"name": "status", "type": "str", "reducer": None},
        {"name": "counter", "type": "int", "reducer": None},
    ]


def test_conditional_edges_and_custom_reducers_are_described(api):
    support = api.get("/api/flows/support/").json()
    assert support["name"] == "support" and "support-desk" in support["description"]
    routes = {e["target"] for e in support["edges"] if e["source"] == "classify" and e["conditional"]}
    assert routes == {"ask_details", "answer_faq", "order_status", "request_refund", "fallback"}
    fields = {f["name"]: f for f in support["state_fields"]}
    assert fields["messages"]["reducer"] == "add_messages"
    assert fields["order_id"]["type"] == "str | None"


def test_a_factory_docstring_describes_its_flow(api):
    description = api.get("/api/flows/chat/").json()["description"]
    assert description == "Answers every message; fails on demand (fail: true)."


def test_an_unknown_flow_is_404(api):
    data = assert_error(api.get("/api/flows/nope/"), 404, "flow_not_found")
    assert "'nope'" in data["detail"]
    assert_error(api.get("/api/flows/nope/sessions/"), 404, "flow_not_found")
    assert_error(api.post("/api/flows/nope/sessions/s/invoke/", {}, format="json"), 404, "flow_not_found")
