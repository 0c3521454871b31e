"""The report's HTML for a marketing reader: axis titles, plain-word definitions, figures
rounded for reading (report.json keeps full precision), nothing fetched from the web."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.report.test_report import _history

_register()

TX = """customer_id,timestamp,amount,order_id
A,2024-01-03,10,o1
A,2024-02-10,30,o2
B,2024-01-20,50,o3
C,2024-02-05,5,o4
"""


def _build(tmp_path: Path, src: Path) -> tuple[str, dict[str, object]]:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    return (out / "report.html").read_text(), json.loads((out / "report.json").read_text())


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def _svg_texts(section: str) -> list[str]:
    svg = section[section.index("<svg") : section.index("</svg>")]
    return [unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_key_figures_show_rates_with_one_decimal(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    html, data = _build(tmp_path, tmp_path / "tx.csv")
    cells = re.findall(r"<th>([^<]*)</th><td>([^<]*)</td>", _section(html, "Key figures"))
    assert cells == [
        ("Customers", "3"),
        ("Repeat purchase rate", "33.3 %"),
        ("Revenue share of the top 20 % of customers", "52.6 %"),
        ("Average order value", "23.75"),
        ("Simple CLV", "n/a"),
        ("Customer lifespan of the simple CLV", "n/a"),
    ]
    # report.json keeps the full precision.
    metrics = data["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["repeat_rate"]["rows"][0]["repeat_purchase_rate"] == 33.3333
    assert metrics["pareto"]["summary"]["top_revenue_share"] == 52.6316
    assert "the top 20 % bring 52.6 % of revenue" in _section(html, "Pareto curve")


def test_every_chart_names_its_axes_and_the_heat_map_its_cohort_sizes(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    html, _ = _build(tmp_path, tmp_path / "tx.csv")
    texts = _svg_texts(_section(html, "Cohort heat map"))
    assert texts[:2] == ["months after the first purchase", "first-purchase month (customers)"]
    # January: A and B started; February: C.
    assert "2024-01 (2)" in texts and "2024-02 (1)" in texts
    expected = {
        "Monthly retention and churn": ("month", "% of last month's customers"),
        "Retention curves": ("months after the first purchase", "% of cohort still buying"),
        "Repurchase curves": ("days after the first order", "% who ordered again"),
        "Pareto curve": ("% of customers, biggest spenders first", "% of revenue"),
    }
    for title, (x_title, y_title) in expected.items():
        texts = _svg_texts(_section(html, title))
        assert x_title in texts and y_title in texts, title


def test_definitions_are_in_plain_words_and_figures_rounded(tmp_path: Path) -> None:
    _history(tmp_path / "tx.csv")
    html, data = _build(tmp_path, tmp_path / "tx.csv")
    models = data["clv_models"]
    assert isinstance(models, dict) and models["purchase_model"]["converged"]
    assert "see `fidelite" not in html and "docs/clv.md" not in html
    rfm = _section(html, "RFM segments")
    assert "Every customer gets two scores from 1 to 5." in rfm
    assert "champions: recency 4-5 and frequency 4-5; loyal: recency 3 and frequency 4-5" in rfm
    clv = _section(html, "Customer lifetime value (next 12 months)")
    assert "A customer&#x27;s lifetime value (CLV) = the amount they are expected to spend" in clv
    figures = models["clv"]
    mean, share = figures["mean"], figures["top_20_percent_share"]
    assert f"Mean {mean:,.2f}, median {figures['median']:,.2f}" in clv
    assert f"hold {share:.1f} % of the expected value" in clv
    alive = _section(html, "Probability that a customer is still active")
    assert "P(alive) = the purchase model" in alive
    assert f"mean {models['probability_alive']['mean']:.2f} over" in alive
    # No figure anywhere outside the charts carries more than two decimals.
    text = re.sub(r"<svg.*?</svg>", "", html, flags=re.S)
    assert re.findall(r"\d\.\d{3,}", text) == []


def test_report_fetches_nothing_from_the_web(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    html, _ = _build(tmp_path, tmp_path / "tx.csv")
    # The only URL is the SVG namespace, a name that is never fetched.
    assert re.findall(r"https?://[^\"' )<]*", html) == ["http://www.w3.org/2000/svg"] * 6
    for fetching in ("<script", "<link", "<img", "<iframe", "src=", "url(", "@import"):
        assert fetching not in html, fetching
