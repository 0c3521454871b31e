"""The NPS chart shows every loyalty-index month and says when it has nothing to draw;
chart axes carry round, readable values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.report import svg

_register()

TX = "customer_id,timestamp,amount\na,2024-01-05,10\nb,2024-02-05,20\na,2024-03-05,10\n"


def _report(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    (tmp_path / "tx.csv").write_text(TX)
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(out), "-f", "json", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    return data, (out / "report.html").read_text()


def _surveys(tmp_path: Path, lines: str) -> str:
    path = tmp_path / "answers.csv"
    path.write_text("customer_id,timestamp,question,score\n" + lines)
    return str(path)


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def _marks(section: str) -> list[str]:
    return re.findall(r"<circle [^>]*/>|<polyline [^>]*/>", section)


def _y_labels(section: str) -> list[str]:
    return re.findall(r'font-size="10" text-anchor="end">([^<]*)</text>', section)


def test_nps_chart_shows_the_loyalty_index_months_without_nps_answers(tmp_path: Path) -> None:
    answers = _surveys(
        tmp_path,
        "a,2024-01-05,nps,10\na,2024-01-05,repurchase,10\n"
        "b,2024-03-05,repurchase,2\nc,2024-04-05,upsell,9\n",
    )
    data, html = _report(tmp_path, "--surveys", answers)
    index = data["surveys"]["loyalty_index_trend"]["rows"]
    assert [(r["period"], r["loyalty_index"]) for r in index] == [
        ("2024-01", 100.0), ("2024-02", None), ("2024-03", -100.0), ("2024-04", 100.0)
    ]  # fmt: skip
    assert [(r["period"], r["nps"]) for r in data["surveys"]["nps_trend"]["rows"]] == [
        ("2024-01", 100.0)
    ]
    section = _section(html, "NPS trend")
    assert re.findall(r">(2024-\d\d)</text>", section) == [
        "2024-01", "2024-02", "2024-03", "2024-04"
    ]  # fmt: skip
    # Four months 171.3 apart: NPS a dot in January; the index a dot, a gap, then
    # March (-100, the bottom) to April (100, the top).
    assert _marks(section) == [
        '<circle cx="56.0" cy="16.0" r="3" fill="#2563eb"/>',
        '<circle cx="56.0" cy="16.0" r="3" fill="#dc2626"/>',
        '<polyline fill="none" stroke="#dc2626" stroke-width="2" points="398.7,252.0 570.0,16.0"/>',
    ]
    # the table stays the NPS's: January only
    assert re.findall(r"<tr><td>(2024-\d\d)</td>", section) == ["2024-01"]


def test_only_csat_answers_have_no_nps_to_chart_and_say_so(tmp_path: Path) -> None:
    answers = _surveys(tmp_path, "a,2024-01-05,csat,5\nb,2024-03-05,csat,2\n")
    data, html = _report(tmp_path, "--surveys", answers)
    assert set(data["surveys"]) == {"loyalty_index_trend", "csat"}
    assert data["surveys"]["loyalty_index_trend"]["rows"] == []
    assert data["not_included"]["nps_trend"] == "the survey answers file has no nps answers"
    assert data["not_included"]["ces"] == "the survey answers file has no ces answers"
    assert "csat" not in data["not_included"]
    section = _section(html, "NPS trend")
    assert "<svg" not in section and "<table" not in section
    assert (
        "<p class='nodata'><b>No data to chart:</b> the survey answers file has no answers "
        "to the recommend (nps), buy-again (repurchase) or try-other-products (upsell) "
        "questions.</p>"
    ) in section
    assert (
        "<b>What it shows.</b> No Net Promoter Score: the survey answers file has no answers "
        "to the recommend (nps) question."
    ) in section
    assert "Definition: Customer loyalty index = " in section
    # no line to read: no advice about a falling line or counts in report.json
    assert "falling line" not in section and "report.json" not in section
    assert "Ask the recommend question (0 to 10) in your surveys" in section
    assert "<h2>Satisfaction, effort and share of wallet</h2>" in html


def test_repurchase_answers_alone_chart_the_loyalty_index(tmp_path: Path) -> None:
    answers = _surveys(tmp_path, "a,2024-01-05,repurchase,10\nb,2024-02-05,repurchase,0\n")
    data, html = _report(tmp_path, "--surveys", answers)
    assert "nps_trend" not in data["surveys"] and "nps" not in data["surveys"]
    assert data["not_included"]["nps_trend"] == "the survey answers file has no nps answers"
    section = _section(html, "NPS trend")
    assert _marks(section) == [
        '<polyline fill="none" stroke="#dc2626" stroke-width="2" points="56.0,16.0 570.0,252.0"/>'
    ]
    assert "No data to chart" not in section


def test_axis_ticks_are_round_values_with_thousands_separators(tmp_path: Path) -> None:
    subs = tmp_path / "subs.csv"
    subs.write_text("customer_id,mrr,start,end\na,1234557.89,2024-01-01,\nb,10,2024-02-01,\n")
    data, html = _report(tmp_path, "--subscriptions", str(subs))
    mrr = data["revenue"]["mrr"]["rows"]
    assert [(r["period"], r["ending_mrr"]) for r in mrr] == [
        ("2024-01", 1234557.89), ("2024-02", 1234567.89)
    ]  # fmt: skip
    revenue = _section(html, "Recurring revenue")
    assert _y_labels(revenue) == ["0", "500,000", "1,000,000", "1,500,000"]
    # the plot starts right of the widest label: 1,234,567.89 of 1,500,000 is 190.1 px up
    assert _marks(revenue) == [
        '<polyline fill="none" stroke="#2563eb" stroke-width="2" points="77.0,57.8 570.0,57.8"/>'
    ]
    # percent axes: 0 to 100 by 20; the NPS axis -100 to 100 by 50
    assert _y_labels(_section(html, "Monthly retention and churn")) == [
        "0", "20", "40", "60", "80", "100"
    ]  # fmt: skip
    answers = _surveys(tmp_path, "a,2024-01-05,nps,10\n")
    _, html = _report(tmp_path, "--surveys", answers)
    assert _y_labels(_section(html, "NPS trend")) == ["-100", "-50", "0", "50", "100"]


def test_mrr_axis_of_small_amounts_steps_in_round_money() -> None:
    assert svg.ticks(0.0, 129.98, min_step=0.01) == (
        [0.0, 50.0, 100.0, 150.0], ["0", "50", "100", "150"]
    )  # fmt: skip
    # 0.013 would step by 0.005 (0.015: three decimals); money steps by 0.01
    assert svg.ticks(0.0, 0.013, min_step=0.01) == ([0.0, 0.01, 0.02], ["0.00", "0.01", "0.02"])
    assert svg.ticks(0.0, 0.013) == (
        [0.0, 0.005, 0.01, 0.015], ["0.000", "0.005", "0.010", "0.015"]
    )  # fmt: skip
    assert svg.ticks(0.0, 0.0) == (
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    )  # fmt: skip
    chart = svg.line_chart(
        ["2024-01", "2024-02"],
        [("ending MRR", [60.0, 129.98])],
        x_label="month",
        y_label="monthly recurring revenue",
        y_max=129.98,
        money=True,
    )
    assert _y_labels(chart) == ["0", "50", "100", "150"]
    # 129.98 of 150 is 204.5 px up from the bottom (252.0)
    assert _marks(chart) == [
        '<polyline fill="none" stroke="#2563eb" stroke-width="2" points="56.0,157.6 570.0,47.5"/>'
    ]


def test_one_nps_answer_is_said_in_the_singular(tmp_path: Path) -> None:
    answers = _surveys(tmp_path, "a,2024-01-05,nps,10\n")
    _, html = _report(tmp_path, "--surveys", answers)
    section = _section(html, "NPS trend")
    assert "from 1 survey answer (over the whole period: 100.0)" in section
