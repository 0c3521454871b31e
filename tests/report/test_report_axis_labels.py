"""Time axes whose month labels do not run into each other (the most recent month always
named), a Pareto axis likewise, and a heat map whose row title is not cut at the image's
left edge: widths measured with the widest common sans-serif face."""

from __future__ import annotations

import json
import re
from html import unescape
from itertools import pairwise
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# DejaVu Sans advance widths (em), as Chromium measures them: the widest common
# sans-serif face, the one a Linux browser draws the charts' "sans-serif" with.
EM = {str(d): 0.636 for d in range(10)} | {
    "-": 0.361, "%": 0.95, " ": 0.318, "(": 0.39, ")": 0.39, "a": 0.613, "c": 0.55,
    "e": 0.615, "f": 0.352, "h": 0.634, "i": 0.278, "m": 0.974, "n": 0.634, "o": 0.612,
    "p": 0.635, "r": 0.411, "s": 0.521, "t": 0.392, "u": 0.634,
}  # fmt: skip


def _width(text: str, size: float) -> float:
    return size * sum(EM[c] for c in text)


def _report(tmp_path: Path, lines: list[str], *extra: str) -> tuple[dict[str, Any], str]:
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\n" + "\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = ["report", str(src), "--out", str(out), "-f", "json", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def _months(count: int, last_day: int = 20) -> list[str]:
    """Customer c<m> buys on the 10th of month m (from 2023-01) and again on the 10th
    of the next month; c0 buys again on day ``last_day`` of the last month."""
    lines = []
    for m in range(count):
        for k in (m, m + 1):
            if k < count:
                lines.append(f"c{m},{2023 + k // 12}-{k % 12 + 1:02d}-10,10")
    last = count - 1
    lines.append(f"c0,{2023 + last // 12}-{last % 12 + 1:02d}-{last_day:02d},10")
    return lines


def _x_labels(section: str) -> list[tuple[float, str]]:
    """The x axis labels of the section's line chart (x = 300 - 48 + 16), left to right."""
    found = re.findall(
        r'<text x="([\d.]+)" y="268" font-size="10" text-anchor="middle">([^<]*)</text>',
        section,
    )
    return [(float(x), unescape(label)) for x, label in found]


def _apart(labels: list[tuple[float, str]]) -> list[tuple[str, str]]:
    """The pairs of neighbouring labels closer than half their widths plus 2 px."""
    return [
        (a, b)
        for (xa, a), (xb, b) in pairwise(labels)
        if xb - xa < (_width(a, 10) + _width(b, 10)) / 2 + 2
    ]


def test_month_labels_of_a_long_time_axis_do_not_overlap(tmp_path: Path) -> None:
    """Was: 30 months labelled every second month, 35.4 px apart for labels 41.8 px
    wide: 2023-01 ran into 2023-03 and so on to 2025-05; June 2025 had no label."""
    _, html = _report(tmp_path, _months(30))
    section = _section(html, "Monthly retention and churn")
    labels = _x_labels(section)
    assert _apart(labels) == []
    # every third month, counted back from the last (the most recent is named)
    assert [label for _, label in labels] == [
        f"{2023 + k // 12}-{k % 12 + 1:02d}" for k in range(2, 30, 3)
    ]
    assert labels[-1] == (570.0, "2025-06")
    # every month keeps a tick on the axis
    assert len(re.findall(r'<line x1="[\d.]+" x2="[\d.]+" y1="252" y2="256"', section)) == 30


def test_pareto_percent_labels_do_not_overlap(tmp_path: Path) -> None:
    """Was: 21 labels 0% to 100%, 25.7 px apart, 100% 28.6 px wide."""
    _, html = _report(tmp_path, _months(3))
    labels = _x_labels(_section(html, "Pareto curve"))
    assert _apart(labels) == []
    assert [label for _, label in labels] == [f"{p}%" for p in range(0, 101, 10)]


def test_the_heat_map_row_title_is_not_cut_at_the_left_edge(tmp_path: Path) -> None:
    """Was: "first-purchase month (customers)" ended at x = 144, right-aligned, 183 px
    wide at 11 px: it began at x = -39, outside the image."""
    _, html = _report(tmp_path, _months(3))
    section = _section(html, "Cohort heat map")
    x = re.findall(
        r'<text x="(\d+)" y="32" font-size="11" text-anchor="end" fill="#555">'
        r"first-purchase month \(customers\)</text>",
        section,
    )
    assert len(x) == 1
    assert float(x[0]) >= _width("first-purchase month (customers)", 11)
