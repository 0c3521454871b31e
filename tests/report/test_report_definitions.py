"""What the report's figures mean, stated in the report itself (SPEC §4)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# One day: a bought twice (two orders), b and c once.
ONE_DAY = """customer_id,timestamp,amount,order_id
a,2024-03-05T09:00:00,10,o1
a,2024-03-05T10:00:00,20,o2
b,2024-03-05T11:00:00,30,o3
c,2024-03-05T12:00:00,40,o4
"""


def _report(tmp_path: Path, text: str, *args: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    src = tmp_path / "tx.csv"
    src.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def test_the_clv_models_count_purchase_days_not_orders(tmp_path: Path) -> None:
    data, html = _report(tmp_path, ONE_DAY)
    # a has two orders (a repeat customer for the repeat rate) but on one day only
    assert data["metrics"]["repeat_rate"]["rows"][0]["repeat_customers"] == 1
    reason = (
        "only 0 customers bought on more than one day (the models count a day's purchases "
        "as one); the models need at least 10"
    )
    assert data["clv_models"] == {"error": reason}
    assert escape(reason) in html


# Jan 1 to Mar 31, three complete months. Jan: a b c d; Feb: a b (c, d lost: 2 of 4);
# Mar: a (b lost: 1 of 2). Monthly churn = 3 / 6 = 50 %, lifespan = 1 / (12 x 0.5) year.
THREE_MONTHS = """customer_id,timestamp,amount,order_id
a,2024-01-01,10,o1
b,2024-01-05,20,o2
c,2024-01-09,30,o3
d,2024-01-12,40,o4
a,2024-02-03,10,o5
b,2024-02-04,10,o6
a,2024-03-31,20,o7
"""


def _key_figures(html: str) -> str:
    start = html.index("<h2>Key figures</h2>")
    return html[start : html.index("</section>", start)]


def test_key_figures_define_the_simple_clv_and_the_repeat_rate(tmp_path: Path) -> None:
    data, html = _report(tmp_path, THREE_MONTHS)
    key = _key_figures(html)
    row = data["metrics"]["clv"]["rows"][0]
    assert (row["monthly_churn_rate"], row["lifespan_years"]) == (50.0, 0.1667)
    # AOV 140 / 7 = 20; 7 orders / 4 customers / (91 / 365.25) years; x 1/6 year
    assert row["clv"] == round(20 * (7 / 4 / (91 / 365.25)) / 6, 2) == 23.41
    assert "<th>Simple CLV</th><td>23.41</td>" in key
    assert (
        "<th>Customer lifespan of the simple CLV</th>"
        "<td>0.17 years (2.0 months, from a monthly churn of 50.0 %)</td>"
    ) in key
    for metric in ("repeat_rate", "clv", "pareto"):
        assert escape(data["metrics"][metric]["definition"]) in key
    assert key.count("<p class='def'>") == 4  # customers, repeat rate, top 20 %, CLV
    assert (
        "<b>Repeat purchase rate:</b> Repeat purchase rate = customers with 2 or more orders "
        "/ customers with at least one order x 100"
    ) in key
    assert (
        "<b>Average order value, simple CLV and lifespan:</b> CLV = average order value x "
        "purchases per customer per year x lifespan in years."
    ) in key
    assert (
        "This simple CLV is a different figure from the model-based CLV of the section "
        "&#x27;Customer lifetime value&#x27;"
    ) in key


def test_a_simple_clv_without_lifespan_says_why_and_report_takes_lifespan_years(
    tmp_path: Path,
) -> None:
    data, html = _report(tmp_path, ONE_DAY)
    note = data["metrics"]["clv"]["summary"]["note"]
    assert note == (
        "the lifespan comes from monthly churn, which needs two consecutive complete "
        "calendar months, and the data (2024-03-05 to 2024-03-05) hold no complete month: "
        "CLV is undefined; give the expected lifespan with --lifespan-years"
    )
    key = _key_figures(html)
    assert "<th>Simple CLV</th><td>n/a</td>" in key
    assert f"<p><b>Why the simple CLV is n/a:</b> {escape(note)}.</p>" in key

    # the option the note names: AOV 25 x (4 orders / 3 customers / (1 / 365.25)) x 2
    data, html = _report(tmp_path, ONE_DAY, "--lifespan-years", "2")
    row = data["metrics"]["clv"]["rows"][0]
    assert (row["lifespan_years"], row["lifespan_source"], row["clv"]) == (2.0, "given", 24350.0)
    assert data["metrics"]["clv"]["parameters"]["lifespan_years"] == 2.0
    assert "summary" not in data["metrics"]["clv"]
    key = _key_figures(html)
    assert "<th>Simple CLV</th><td>24,350.00</td>" in key
    assert "<td>2.00 years (24.0 months, given)</td>" in key
    assert "Why the simple CLV is n/a" not in key
    assert "lifespan = --lifespan-years (given)" in key


def test_report_refuses_a_lifespan_of_zero_before_writing(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(ONE_DAY)
    out = tmp_path / "out"
    args = ["report", str(src), "--out", str(out), "-f", "json", "--lifespan-years", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == {
        "code": "usage",
        "message": "--lifespan-years: must be above 0, got 0",
    }
    assert not out.exists()


def test_not_included_names_per_product_repurchase_and_bracket_retention(tmp_path: Path) -> None:
    data, _ = _report(tmp_path, ONE_DAY)
    left_out = data["not_included"]
    assert left_out["repurchase_per_product"] == (
        "per-product repurchase rates (the same product ordered again within 30 to 360 "
        "days, by first-purchase month): one row per product and month, which grows with "
        "the catalogue; metrics.repurchase gives the business-wide rates, and fidelite "
        "metrics repurchase --per-product (with a product column) every product's"
    )
    assert left_out["bracket_retention"] == (
        "retention within day brackets (e.g. days 1-7, 8-30, 31-90 after the first "
        "purchase): the brackets are the reader's choice; the report shows N-month "
        "(metrics.cohorts) and unbounded (metrics.unbounded_cohorts) retention, and "
        "fidelite metrics cohorts --kind bracket --brackets 1-7,8-30,31-90 gives brackets"
    )
    assert "repurchase" in data["metrics"] and data["metrics"]["cohorts"]["rows"]
