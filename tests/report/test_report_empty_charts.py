"""Charts without data say so, the heat map shows one decimal, the Pareto text is exact."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

NO_PURCHASES = "<p class='nodata'><b>No data to chart:</b> no purchases in the data (every row is a refund).</p>"  # noqa: E501


def _report(tmp_path: Path, text: str) -> tuple[dict[str, Any], str]:
    src = tmp_path / "tx.csv"
    src.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    return data, (out / "report.html").read_text()


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def test_a_file_of_refunds_says_there_is_nothing_to_chart(tmp_path: Path) -> None:
    data, html = _report(
        tmp_path, "customer_id,timestamp,amount,refund\na,2024-01-05,-10,\nb,2024-02-05,20,true\n"
    )
    assert data["metrics"]["retention"]["rows"] == []
    for title in (
        "Monthly retention and churn",
        "Cohort heat map",
        "Retention curves",
        "Repurchase curves",
        "RFM segments",
        "Pareto curve",
    ):
        section = _section(html, title)
        assert NO_PURCHASES in section, title
        assert "<svg" not in section, title
    assert "the top 20 % bring n/a of revenue.</p>" in _section(html, "Pareto curve")


def test_one_month_has_no_retention_to_chart_but_its_cohort(tmp_path: Path) -> None:
    _, html = _report(
        tmp_path, "customer_id,timestamp,amount\na,2024-03-01,10\nb,2024-03-05,20\na,2024-03-20,5\n"
    )
    retention = _section(html, "Monthly retention and churn")
    assert "<svg" not in retention
    assert (
        "<b>No data to chart:</b> no month of the data follows a month with customers "
        "(retention compares each month&#x27;s customers with the month before&#x27;s).</p>"
    ) in retention
    assert html.count("No data to chart") == 1  # a cohort, curves and RFM are drawn
    # one buyer (b, 20 of 35) is the top 20 %, listed in report.json
    pareto = _section(html, "Pareto curve")
    assert (
        "the top 20 % bring 57.1 % of revenue. report.json lists them in "
        "metrics.pareto.rows (1 customer).</p>"
    ) in pareto


# January: a b c start; a comes back in February: 33.3 % of the cohort in month 1.
THREE = """customer_id,timestamp,amount
a,2024-01-02,10
b,2024-01-03,10
c,2024-01-04,10
a,2024-02-02,10
"""


def test_heat_map_cells_show_one_decimal(tmp_path: Path) -> None:
    data, html = _report(tmp_path, THREE)
    assert data["metrics"]["cohorts"]["rows"][0]["month_1"] == 33.3333
    cells = re.findall(r'fill="#(?:fff|111)">([^<]*)</text>', _section(html, "Cohort heat map"))
    assert cells == ["100.0", "33.3"]


def test_pareto_says_when_report_json_lists_only_the_first_100(tmp_path: Path) -> None:
    rows = "".join(f"c{i:03d},2024-01-{1 + i % 28:02d},{i + 1}\n" for i in range(510))
    data, html = _report(tmp_path, "customer_id,timestamp,amount\n" + rows)
    pareto = data["metrics"]["pareto"]
    assert (pareto["summary"]["top_customers"], len(pareto["rows"])) == (102, 100)
    assert (
        "report.json lists the first 100 of them in metrics.pareto.rows (102 customers).</p>"
    ) in _section(html, "Pareto curve")
