"""flows.graph_svg: a flow's graph as an inline SVG (the UI's and the admin's one drawing)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

from flows.engine import END, START, FlowEngine
from flows.graph_svg import graph_svg
from tests.flows_fixtures import AppState, seed_flow

SVG = "{http://www.w3.org/2000/svg}"


def nodes_of(svg: str) -> dict[str, tuple[float, float]]:
    """Each drawn node's (x, y), read back from the SVG."""
    root = ElementTree.fromstring(svg)
    found: dict[str, tuple[float, float]] = {}
    for group in root.iter(SVG + "g"):
        rect = group.find(SVG + "rect")
        assert rect is not None, "every node is a box"
        found[group.get("data-node", "")] = (float(rect.get("x", "nan")), float(rect.get("y", "nan")))
    return found


def looping_flow() -> FlowEngine:
    flow = FlowEngine(state_schema=AppState)
    flow.add_node("draft <1>", lambda state: {})
    flow.add_node("review & fix", lambda state: {})
    flow.add_edge(START, "draft <1>")
    flow.add_edge("draft <1>", "review & fix")
    flow.add_conditional_edges("review & fix", lambda state: "again", {"again": "draft <1>", "done": END})
    return flow.build()


def test_every_node_is_drawn_a_row_below_what_leads_to_it():
    positions = nodes_of(graph_svg(seed_flow()))
    assert set(positions) == {START, "count", END}
    assert positions[START][1] < positions["count"][1] < positions[END][1]


def test_a_loop_is_drawn_and_names_are_escaped():
    svg = graph_svg(looping_flow(), title="a <loop>")
    positions = nodes_of(svg)  # well-formed XML although the names hold < and &
    assert positions["draft <1>"][1] < positions["review & fix"][1] < positions[END][1]
    assert "draft &lt;1&gt;" in svg and "review &amp; fix" in svg and 'aria-label="a &lt;loop&gt;"' in svg
    assert 'stroke-dasharray="5 4"' in svg  # conditional edges are dashed
    assert ">again</text>" in svg  # the key of the edge running back


def test_each_drawing_has_its_own_arrow_marker():
    first, second = graph_svg(seed_flow()), graph_svg(seed_flow())
    [one] = re.findall(r'<marker id="([^"]+)"', first)
    [two] = re.findall(r'<marker id="([^"]+)"', second)
    assert one != two and f"url(#{one})" in first and f"url(#{one})" not in second


def test_an_edge_that_skips_a_row_passes_beside_its_boxes():
    """order → END runs past refund's row: drawn through it, it looked as if it led into refund."""
    flow = FlowEngine(state_schema=AppState)
    for name in ("route", "order", "refund", "refund_outcome"):
        flow.add_node(name, lambda state: {})
    flow.add_edge(START, "route")
    flow.add_edge("route", "order").add_edge("route", "refund")
    flow.add_edge("refund", "refund_outcome")
    flow.add_edge("order", END).add_edge("refund_outcome", END)
    svg = graph_svg(flow.build())
    root = ElementTree.fromstring(svg)
    boxes = {group.get("data-node"): group.find(SVG + "rect") for group in root.iter(SVG + "g")}
    outcome = boxes["refund_outcome"]
    left, top = float(outcome.get("x")), float(outcome.get("y"))
    right, bottom = left + float(outcome.get("width")), top + float(outcome.get("height"))
    for path in root.iter(SVG + "path"):
        if path.get("class") != "flows-graph-edge":
            continue
        points = [tuple(map(float, pair.split(","))) for pair in re.findall(r"-?[\d.]+,-?[\d.]+", path.get("d"))]
        ends = {points[0], points[-1]}
        if any(top <= y <= bottom for _, y in ends):
            continue  # an edge of refund_outcome itself
        for x, y in points:  # the path's points (and so its curve, which stays within them) avoid the box
            assert not (left < x < right and top < y < bottom), path.get("d")
        crossing = [x for x, y in points if top - 7 <= y <= bottom + 13]
        assert all(not left <= x <= right for x in crossing), path.get("d")
