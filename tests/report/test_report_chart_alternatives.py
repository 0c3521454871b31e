"""Every chart is one named image to assistive technology, with a description, and the
line charts and the heat map give their values in a table under them."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# A: 15 days apart; B: 51 days; C starts on the last day (15 April).
TX = """customer_id,timestamp,amount
A,2024-01-05,10
A,2024-01-20,10
B,2024-01-10,20
B,2024-03-01,20
C,2024-04-15,5
"""


def _html(tmp_path: Path) -> str:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    return (out / "report.html").read_text()


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def _table(section: str) -> list[list[str]]:
    """The folded table's rows, header row first, cells unescaped of tags."""
    table = section[section.index("<details") : section.index("</details>")]
    assert "<summary>The chart's values as a table</summary><table><caption>" in table
    return [re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", table)]  # fmt: skip


def test_every_chart_is_a_named_described_image(tmp_path: Path) -> None:
    html = _html(tmp_path)
    heads = re.findall(r'<svg [^>]*role="img"><title>([^<]*)</title><desc>([^<]*)</desc>', html)
    assert html.count("<svg") == len(heads) == 6
    assert [t for t, _ in heads] == [
        "Monthly retention and churn", "Cohort heat map", "Retention curves",
        "Repurchase curves", "Customers per RFM segment", "Pareto curve",
    ]  # fmt: skip
    assert heads[0][1] == escape(
        "Line chart of retention %, churn %: month across, from 2024-01 to 2024-04; % of "
        "last month's customers up, from 0 to 100."
    )
    assert heads[4][1] == "Bar chart of customers per bar: hibernating: 1; lost: 1; promising: 1."


def test_line_charts_and_heat_map_give_their_values(tmp_path: Path) -> None:
    html = _html(tmp_path)
    assert _table(_section(html, "Monthly retention and churn")) == [
        ["month", "retention", "churn"],
        ["2024-01", "n/a", "n/a"], ["2024-02", "0.0 %", "100.0 %"],
        ["2024-03", "n/a", "n/a"], ["2024-04", "0.0 %", "100.0 %"],
    ]  # fmt: skip
    assert _table(_section(html, "Cohort heat map")) == [
        ["first-purchase month (customers)", "month 0", "month 1", "month 2", "month 3"],
        ["2024-01 (2)", "100.0 %", "0.0 %", "50.0 %", "0.0 %"],
        ["2024-04 (1)", "100.0 %", "", "", ""],
    ]
    assert _table(_section(html, "Retention curves")) == [
        ["months after the first purchase", "2024-01", "2024-04"],
        ["0", "100.0 %", "100.0 %"], ["1", "50.0 %", ""], ["2", "50.0 %", ""],
        ["3", "0.0 %", ""],
    ]  # fmt: skip
    provisional = "0.0 % (provisional)"
    assert _table(_section(html, "Repurchase curves")) == [
        ["first-purchase month", "30 days", "60 days", "90 days", "180 days", "360 days"],
        ["2024-01", "50.0 %", "100.0 %", *["100.0 % (provisional)"] * 3],
        ["2024-04", *[provisional] * 5],
    ]
    pareto = _table(_section(html, "Pareto curve"))
    assert pareto[:3] == [
        ["% of customers, biggest spenders first", "% of revenue"],
        ["0.0 %", "0.0 %"],
        ["5.0 %", "61.5 %"],  # B: 40 of the 65
    ]
    assert (len(pareto), pareto[-1]) == (22, ["100.0 %", "100.0 %"])
    scoped = re.findall(r'<th scope="(col|row)">', _section(html, "Retention curves"))
    assert scoped == ["col"] * 3 + ["row"] * 4
