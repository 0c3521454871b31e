"""The values behind a chart as an HTML table, for readers who cannot see the chart.

Each chart's ``<svg>`` is one image to assistive technology (``role="img"``, named by
its ``<title>``): the numbers it draws are in a table under it, folded in a
``<details>`` element so that sighted readers see the chart first. The table has a
``<caption>``, its column headers in a ``<thead>`` (``scope="col"``) and each row's
label as a row header (``scope="row"``). Every cell is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table: ``head`` the column headers, each row's first cell its row header."""
    header = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "".join(
        f'<tr><th scope="row">{escape(row[0])}</th>'
        + "".join(f"<td>{escape(cell)}</td>" for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    return (
        f"<table><caption>{escape(caption)}</caption><thead><tr>{header}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def folded(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """:func:`table` inside a closed ``<details>`` whose summary says what it holds."""
    return (
        "<details class='values'><summary>The chart's values as a table</summary>"
        f"{table(caption, head, rows)}</details>"
    )
