"""A flow's graph as an inline SVG, drawn on the server: no remote renderer, no script.

The UI and the admin both show it. Nodes are laid out in rows by their
longest distance from START (edges that run back, as loops do, are left out
of that count and drawn curving round the side); a row is ordered by where
its nodes' parents sit. An edge that skips rows passes them through the gap
beside their boxes, so it never looks as if it led into one. Conditional
edges are dashed and carry their key.
Colours come from CSS custom properties (``--flows-graph-*``), with
``currentColor`` underneath, so a light or dark page themes it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from flows.engine import END, START, FlowEngine
from flows.engine.graph import Edge

ROW_HEIGHT = 74
BOX_HEIGHT = 30
GAP = 22
CHAR_WIDTH = 7.4
MARGIN = 12
LABELS = {START: "start", END: "end"}
#: each drawing's own marker id: a page with several graphs must not share one
_drawings = itertools.count(1)
STYLE = (
    ".flows-graph text{font:12px ui-sans-serif,system-ui,sans-serif;text-anchor:middle;"
    "dominant-baseline:central;fill:var(--flows-graph-text,currentColor)}"
    ".flows-graph-node rect{fill:var(--flows-graph-node,transparent);stroke:var(--flows-graph-line,currentColor)}"
    ".flows-graph-terminal rect{fill:var(--flows-graph-terminal,transparent);"
    "stroke:var(--flows-graph-line,currentColor);stroke-opacity:.6}"
    ".flows-graph-edge{fill:none;stroke:var(--flows-graph-line,currentColor);stroke-opacity:.7}"
    ".flows-graph-arrow{fill:var(--flows-graph-line,currentColor)}"
    ".flows-graph .flows-graph-label{font-size:11px;fill:var(--flows-graph-label,currentColor);"
    "paint-order:stroke;stroke:var(--flows-graph-halo,Canvas);stroke-width:4px}"
    ".flows-graph-node.flows-graph-active rect{fill:var(--flows-graph-active,#dbeafe);stroke-width:2}"
)


@dataclass
class Box:
    name: str
    row: int
    x: float = 0.0
    width: float = 0.0

    @property
    def y(self) -> float:
        return MARGIN + self.row * ROW_HEIGHT

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


def _rows(names: list[str], edges: list[Edge]) -> dict[str, int]:
    """Each node's row: its longest path from START over the edges that do not run back."""
    children: dict[str, list[str]] = {name: [] for name in names}
    for edge in edges:
        children[edge.source].append(edge.target)
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    back: set[tuple[str, str]] = set()

    def walk(name: str) -> None:
        state[name] = 1
        for child in children[name]:
            if state.get(child) == 1:
                back.add((name, child))
            elif child not in state:
                walk(child)
        state[name] = 2
        order.append(name)

    for name in names:
        if name not in state:
            walk(name)
    row = dict.fromkeys(names, 0)
    for name in reversed(order):  # a topological order of the forward edges
        for child in children[name]:
            if (name, child) not in back:
                row[child] = max(row[child], row[name] + 1)
    if END in row:  # END alone on the last row
        row[END] = max(r for name, r in row.items() if name != END) + 1
    return row


def _layout(names: list[str], edges: list[Edge]) -> tuple[dict[str, Box], dict[int, list[Box]], float]:
    """Each node's box, the boxes of each row (left to right), and the drawing's width."""
    rows = _rows(names, edges)
    boxes = {name: Box(name, rows[name], width=max(60.0, len(LABELS.get(name, name)) * CHAR_WIDTH + 24))
             for name in names}
    by_row: dict[int, list[Box]] = {}
    for name in names:
        by_row.setdefault(rows[name], []).append(boxes[name])
    parents: dict[str, list[str]] = {name: [] for name in names}
    for edge in edges:
        parents[edge.target].append(edge.source)
    position: dict[str, float] = {}
    for row in sorted(by_row):
        placed = by_row[row]
        placed.sort(key=lambda box: sum(position.get(p, 0.0) for p in parents[box.name])
                    / max(1, sum(p in position for p in parents[box.name])))
        for index, box in enumerate(placed):
            position[box.name] = index
    width = max(sum(box.width for box in row) + GAP * (len(row) - 1) for row in by_row.values()) + 2 * MARGIN
    for row_boxes in by_row.values():
        x = (width - (sum(box.width for box in row_boxes) + GAP * (len(row_boxes) - 1))) / 2
        for box in row_boxes:
            box.x = x
            x += box.width + GAP
    return boxes, by_row, width


def _gap_near(x: float, row: list[Box]) -> float:
    """``x``, or the middle of the gap nearest it when a box of ``row`` is in the way."""
    for box in row:
        if box.x - GAP / 2 < x < box.x + box.width + GAP / 2:
            left, right = box.x - GAP / 2, box.x + box.width + GAP / 2
            return left if x - left <= right - x else right
    return x


def _down(x1: float, y1: float, x2: float, y2: float) -> str:
    """A curve down from (x1, y1) to (x2, y2), leaving and arriving vertically."""
    bend = (y2 - y1) / 2
    return f" C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"


def _edge(edge: Edge, source: Box, target: Box, width: float, arrow: str, rows: dict[int, list[Box]]) -> str:
    dashed = ' stroke-dasharray="5 4"' if edge.conditional else ""
    if target.row > source.row:
        x1, y1 = source.centre, source.y + BOX_HEIGHT
        x2, y2 = target.centre, target.y
        # across the rows between them through the gaps beside their boxes, never over one
        path, x, y = f"M{x1:.1f},{y1:.1f}", x1, y1
        toward = x2  # where the edge heads from its source (the label goes on that first stretch)
        for row in range(source.row + 1, target.row):
            share = (row - source.row) / (target.row - source.row)
            gap = _gap_near(x1 + (x2 - x1) * share, rows[row])
            top = MARGIN + row * ROW_HEIGHT - 6
            path += _down(x, y, gap, top) + f" L{gap:.1f},{top + BOX_HEIGHT + 12:.1f}"
            toward = gap if row == source.row + 1 else toward
            x, y = gap, top + BOX_HEIGHT + 12
        path += _down(x, y, x2, y2)
        label_x, label_y = (x1 + toward) / 2, y1 + (ROW_HEIGHT - BOX_HEIGHT) / 2
    else:  # back to an earlier row (a loop), or along one: round the right-hand side
        x1, y1 = source.x + source.width, source.y + BOX_HEIGHT / 2 - 6  # apart, so a self-loop is a loop
        x2, y2 = target.x + target.width, target.y + BOX_HEIGHT / 2 + 6
        out = max(x1, x2) + 40
        path = f"M{x1:.1f},{y1:.1f} C{out:.1f},{y1:.1f} {out:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        label_x, label_y = min(out, width - MARGIN), (y1 + y2) / 2
    parts = [f'<path class="flows-graph-edge" d="{path}"{dashed} marker-end="url(#{arrow})"/>']
    if edge.label and edge.label != edge.target:
        parts.append(f'<text class="flows-graph-label" x="{label_x:.1f}" y="{label_y:.1f}">'
                     f"{escape(edge.label)}</text>")
    return "".join(parts)


def graph_svg(engine: FlowEngine, *, title: str = "") -> SafeString:
    """The graph of ``engine`` as an ``<svg>`` element (safe to put in a template as it is)."""
    edges = engine.edges()
    names = [START, *engine.nodes] + ([END] if any(edge.target == END for edge in edges) else [])
    boxes, rows, width = _layout(names, edges)
    arrow = f"flows-arrow-{next(_drawings)}"
    height = max(box.y for box in boxes.values()) + BOX_HEIGHT + MARGIN
    width = max(width, max(box.x + box.width for box in boxes.values()) + 48)  # room for loops
    parts = [
        f'<svg class="flows-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(title or "the flow graph")}">',
        f"<defs><marker id=\"{arrow}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" "
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="flows-graph-arrow"/>'
        "</marker></defs>",
        f"<style>{STYLE}</style>",
    ]
    for edge in edges:
        parts.append(_edge(edge, boxes[edge.source], boxes[edge.target], width, arrow, rows))
    for box in boxes.values():
        kind = "flows-graph-terminal" if box.name in LABELS else "flows-graph-node"
        parts.append(
            f'<g class="{kind}" data-node="{escape(box.name)}">'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{BOX_HEIGHT}" rx="'
            f'{BOX_HEIGHT / 2 if box.name in LABELS else 6:.0f}"/>'
            f'<text x="{box.centre:.1f}" y="{box.y + BOX_HEIGHT / 2:.1f}">{escape(LABELS.get(box.name, box.name))}'
            "</text></g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every name and label above is escaped
