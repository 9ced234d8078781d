"""Plain-text tables, and the number formats every section uses."""

from __future__ import annotations

import math
from collections.abc import Sequence


def us(value: float | None) -> str:
    """Microseconds: one decimal below 100, none above."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def ratio(value: float | None, base: float | None) -> str:
    """``value`` as a multiple of ``base`` (``6.2x``)."""
    if value is None or base is None or base <= 0 or math.isnan(value) or math.isnan(base):
        return "-"
    r = value / base
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x" if r >= 100 else f"{r:.1f}x"


def size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value} B"


def table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[str] = (),
) -> None:
    """Prints a titled table: the first column left-aligned, the others right-aligned.

    Every row has one cell per header column (a row of another length is a bug: ValueError).
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(c) for c in cells)
        return "  " + first.ljust(widths[0]) + "".join("  " + c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))

    print(f"\n{title}")
    print(line(header))
    print("  " + "-" * (sum(widths) + 2 * (len(widths) - 1)))
    for row in rows:
        print(line(row))
    for note in notes:
        print(f"  * {note}")
