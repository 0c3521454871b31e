"""The loyalty report: offline HTML with charts, and report.json with every number."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

from pytest import approx
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

TX = """customer_id,timestamp,amount,order_id
A,2024-01-03,10,o1
A,2024-02-10,30,o2
B,2024-01-20,50,o3
C,2024-02-05,5,o4
"""


def test_report_writes_offline_html_and_json(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    feb = data["metrics"]["retention"]["rows"][1]
    # S = {A, B}, E = {A, C}: A retained, B lost.
    assert (feb["retention_rate"], feb["churn_rate"]) == (50.0, 50.0)
    assert data["metrics"]["repeat_rate"]["rows"][0]["repeat_purchase_rate"] == round(100 / 3, 4)
    assert data["metrics"]["pareto"]["summary"]["top_revenue"] == 50.0  # ceil(0.2 x 3) = 1: B
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 6
    assert "How to read it." in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_report_on_bad_file_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\nA,yesterday,1\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["row"] == 2
    assert not out.exists()


ANSWERS = """customer_id,timestamp,question,score
A,2024-01-05,nps,10
B,2024-01-06,nps,3
C,2024-03-01,nps,9
A,2024-01-05,repurchase,9
"""
SUBS = """customer_id,mrr,start,end
A,10,2024-01-01,2024-02-10
B,20,2024-01-01,
"""


def test_report_adds_nps_trend_and_recurring_revenue(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    (tmp_path / "answers.csv").write_text(ANSWERS)
    (tmp_path / "subs.csv").write_text(SUBS)
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(out), "--format", "json",
            "--surveys", str(tmp_path / "answers.csv"),
            "--subscriptions", str(tmp_path / "subs.csv")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    trend = data["surveys"]["nps_trend"]["rows"]
    # January: one promoter, one detractor -> 0; February: no answers; March: 100.
    assert [(r["period"], r["nps"]) for r in trend] == [
        ("2024-01", 0.0), ("2024-02", None), ("2024-03", 100.0)
    ]  # fmt: skip
    assert data["surveys"]["loyalty_index_trend"]["rows"][0]["loyalty_index"] == 50.0
    revenue = data["revenue"]["mrr"]["rows"]
    assert [(r["period"], r["starting_mrr"], r["churned_mrr"]) for r in revenue] == [
        ("2024-01", 0.0, 0.0), ("2024-02", 30.0, 10.0)
    ]  # fmt: skip  # both start on 1 January: January's new MRR
    assert "nps_trend" not in data["not_included"]
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 8
    # Subscription dates are read in the report's time zone, as the answers are.
    paris = tmp_path / "paris"
    args = [*args[:3], str(paris), *args[4:], "--timezone", "Europe/Paris"]
    assert CliRunner().invoke(app, args).exit_code == 0
    in_paris = json.loads((paris / "report.json").read_text())
    assert in_paris["revenue"]["mrr"]["parameters"]["timezone"] == "Europe/Paris"
    assert in_paris["surveys"]["nps"]["parameters"]["timezone"] == "Europe/Paris"
    assert "<h2>NPS trend</h2>" in html and "<h2>Recurring revenue</h2>" in html


def test_recurring_revenue_table_shows_reactivation_and_churn_rates(tmp_path: Path) -> None:
    """A's return in March is reactivated MRR in its own column, not new; gross and net
    MRR churn rates sit beside NRR."""
    (tmp_path / "tx.csv").write_text(TX)
    (tmp_path / "answers.csv").write_text(ANSWERS)
    (tmp_path / "subs.csv").write_text(
        "customer_id,mrr,start,end\nA,10,2024-01-01,2024-02-10\nB,20,2024-01-01,2024-03-10\n"
        "B,30,2024-03-10,\nA,15,2024-03-05,\n"
    )
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(out), "--format", "json",
            "--surveys", str(tmp_path / "answers.csv"),
            "--subscriptions", str(tmp_path / "subs.csv")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    head = ("month", "start", "new", "reactivated", "expansion", "contraction", "churned",
            "end", "gross MRR churn", "net MRR churn", "NRR")  # fmt: skip
    assert "".join(f"<th>{h}</th>" for h in head) in html
    rows = {
        # January: both start (new 30); no starting MRR, so no rates.
        ("2024-01", "0.00", "30.00", "0.00", "0.00", "0.00", "0.00", "30.00", "n/a", "n/a", "n/a"),
        # February: A's 10 of 30 cancelled.
        ("2024-02", "30.00", "0.00", "0.00", "0.00", "0.00", "10.00", "20.00",
         "33.3 %", "33.3 %", "66.7 %"),
        # March: A back at 15 (reactivated), B up 20 -> 30: net churn -10 / 20.
        ("2024-03", "20.00", "0.00", "15.00", "10.00", "0.00", "0.00", "45.00",
         "0.0 %", "-50.0 %", "150.0 %"),
    }  # fmt: skip
    for row in rows:
        assert "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" in html, row


def test_report_with_bad_survey_file_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    (tmp_path / "answers.csv").write_text(ANSWERS + "D,2024-01-07,nps,12\n")
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(out), "--format", "json",
            "--surveys", str(tmp_path / "answers.csv")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (6, "score")
    assert not out.exists()


def _history(path: Path, customers: int = 300, seed: int = 1) -> None:
    """Customers with a first purchase in 2023 and a geometric number of repeats."""
    import random
    from datetime import date, timedelta

    rng = random.Random(seed)
    lines = ["customer_id,timestamp,amount"]
    for c in range(customers):
        # Spend varies between customers (as Gamma-Gamma assumes), so the spend model is
        # identified: with one spend distribution for everyone its q and gamma run off to
        # the search bound and the fit is decided by the last bits of the input sums.
        scale = rng.gammavariate(6.0, 1.0) / 5.0
        day = date(2023, 1, 1) + timedelta(days=rng.randrange(180))
        lines.append(f"c{c},{day},{round(rng.gammavariate(4.0, 10.0 * scale), 2)}")
        while rng.random() < 0.7 and day < date(2024, 6, 1):
            day += timedelta(days=rng.randrange(3, 90))
            lines.append(f"c{c},{day},{round(rng.gammavariate(4.0, 10.0 * scale), 2)}")
    path.write_text("\n".join(lines) + "\n")


def test_report_clv_section_matches_the_models_run_directly(tmp_path: Path) -> None:
    from fidelite.analytics.engine import open_dataset
    from fidelite.analytics.summary import customer_summary
    from fidelite.clv.valuation import value_customers

    src = tmp_path / "tx.csv"
    _history(src)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["warnings"] == []
    report = json.loads((out / "report.json").read_text())
    assert report["warnings"] == []
    data = report["clv_models"]
    summary = customer_summary(open_dataset(src), time_unit="week")
    direct = value_customers(summary, horizon=52.0, discount_rate=0.10)
    # DuckDB sums in parallel, so the two runs may differ in the last bits of the spend
    # averages; a well-identified fit then moves far less than these tolerances.
    assert data["purchase_model"]["params"] == approx(direct.fit.as_dict()["params"], rel=1e-6)
    assert (data["purchase_model"]["converged"], data["spend_model"]["converged"]) == (True, True)
    assert "warning" not in data
    assert data["spend_model"]["params"] == approx(direct.spend_fit.as_dict()["params"], rel=1e-6)
    clv = direct.clv
    assert data["clv"]["customers"] == 300
    assert data["clv"]["total"] == approx(float(clv.sum()), abs=0.01)
    assert data["clv"]["median"] == approx(float(sorted(clv)[149] + sorted(clv)[150]) / 2, abs=0.01)
    assert sum(b["customers"] for b in data["clv"]["histogram"]) == 300
    top = sorted(clv, reverse=True)[:60]
    assert data["clv"]["top_20_percent_share"] == approx(100 * sum(top) / clv.sum(), abs=1e-4)
    # BG/NBD gives every one-time buyer P(alive) = 1, even one who bought once long ago:
    # they are counted, but left out of the chart, the table and the mean.
    repeat = summary.column("frequency").to_numpy() > 0
    alive = direct.predictions.probability_alive[repeat]
    shown = data["probability_alive"]
    assert (shown["customers"], shown["one_time_buyers_not_shown"]) == (209, 91)
    assert int(repeat.sum()) == 209
    assert shown["mean"] == approx(float(alive.mean()), abs=1e-4)
    assert sum(b["customers"] for b in shown["histogram"]) == 209
    assert [(g["repeat_purchases"], g["customers"]) for g in shown["by_frequency"]] == [
        ("1", 77), ("2", 47), ("3-4", 49), ("5-9", 30), ("10+", 6)
    ]  # fmt: skip
    html = (out / "report.html").read_text()
    assert "Customer lifetime value (next 12 months)" in html
    assert "Probability that a customer is still active" in html
    assert (
        f"mean {shown['mean']:.2f} over the 209 customers who bought on more than one day. The "
        "model cannot tell whether the others (one purchase day) are still active (it gives "
        "them all 1): 91 customers not shown."
    ) in html
    assert "<tr><td>0</td>" not in _section(html, "Probability that a customer is still active")
    assert html.count("<svg") == 8


def _steady_buyers(path: Path) -> None:
    """Customers who all keep buying at a steady pace up to the end of the file, for the
    same amount each time: no sign of churn, one spend for everyone. Both fits run to the
    search bound (BG/NBD a, Gamma-Gamma p): the data do not identify the parameters."""
    from datetime import date, timedelta

    lines = ["customer_id,timestamp,amount"]
    for c in range(20):
        for week in range(c % 3, 30, 2 + c % 2):
            lines.append(f"c{c},{date(2024, 1, 1) + timedelta(weeks=week)},{10 + c % 3}")
    path.write_text("\n".join(lines) + "\n")


def test_clv_fits_that_did_not_converge_are_flagged_and_not_charted(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    _steady_buyers(src)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    data = report["clv_models"]
    purchase, spend = data["purchase_model"], data["spend_model"]
    assert (purchase["converged"], spend["converged"]) == (False, False)
    assert purchase["at_bound"] == ["a"]
    # Gamma-Gamma's p grows without bound on these data; where the search stops (at the
    # bound, or earlier on a flat likelihood: p was 2.4 million on one machine) depends on
    # the machine's floating-point path. Either way the fit is refused, and says why.
    assert spend["at_bound"] in ([], ["p"])
    assert spend["message"].startswith("gammagamma: ")
    assert ("bound" if spend["at_bound"] else "flat") in spend["message"]
    # The numbers are kept for inspection, flagged, and the report says so first.
    assert data["clv"]["customers"] == 20
    assert data["warning"] == (
        f"the purchase model did not converge ({purchase['message']}); the spend model did "
        f"not converge ({spend['message']}); its figures in clv_models are kept (flagged "
        "converged false) but are not reliable, and the report does not chart them"
    )
    assert report["warnings"] == [f"Customer lifetime value: {data['warning']}"]
    assert json.loads(result.output)["warnings"] == report["warnings"]
    html = (out / "report.html").read_text()
    section = _section(html, "Customer lifetime value")
    assert "Not shown for this data." in section and "<svg" not in section
    assert f"the purchase model did not converge ({escape(purchase['message'])})" in section
    assert "Customer lifetime value (next 12 months)" not in html
    assert "Probability that a customer is still active" not in html
    assert html.count("<svg") == 6


def test_a_spend_fit_that_did_not_converge_hides_only_the_clv_chart(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    _history(src)
    rows = src.read_text().splitlines()  # the same purchases, all for 20
    src.write_text("\n".join([rows[0], *(r.rsplit(",", 1)[0] + ",20" for r in rows[1:])]) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    spend = report["clv_models"]["spend_model"]
    assert (report["clv_models"]["purchase_model"]["converged"], spend["converged"]) == (
        True,
        False,
    )
    assert report["warnings"] == [
        f"Customer lifetime value: the spend model did not converge ({spend['message']}); its "
        "figures in clv_models are kept (flagged converged false) but are not reliable, and "
        "the report does not chart them"
    ]
    assert "Warning: Customer lifetime value: the spend model did not converge" in result.output
    html = (out / "report.html").read_text()
    section = _section(html, "Customer lifetime value (next 12 months)")
    assert "<svg" not in section
    assert f"the spend model did not converge ({escape(spend['message'])})" in section
    assert "<svg" in _section(html, "Probability that a customer is still active")
    assert html.count("<svg") == 7


def _section(html: str, title: str) -> str:
    """The report section under the heading ``title``."""
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def _marks(html: str, title: str) -> list[str]:
    """The lines and dots of the chart in the section ``title``."""
    return re.findall(r"<(?:polyline|circle) [^>]*>", _section(html, title))


def test_line_charts_show_a_single_month(tmp_path: Path) -> None:
    # Two months: retention has a rate for February only, and February's cohort has only
    # its month 0. A one-point polyline is invisible, so those points are dots.
    src = tmp_path / "two.csv"
    src.write_text(
        "customer_id,timestamp,amount\n"
        "a,2024-01-05,10\nb,2024-01-06,20\na,2024-02-03,15\nc,2024-02-10,5\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    # Retention 50 %, churn 50 % in February (x = 570, y = 134); January stays on the axis.
    assert _marks(html, "Monthly retention and churn") == [
        '<circle cx="570.0" cy="134.0" r="3" fill="#2563eb"/>',
        '<circle cx="570.0" cy="134.0" r="3" fill="#dc2626"/>',
    ]
    assert ">2024-01</text>" in _section(html, "Monthly retention and churn")
    assert _marks(html, "Retention curves") == [
        '<polyline fill="none" stroke="#2563eb" stroke-width="2" points="56.0,16.0 570.0,134.0"/>',
        '<circle cx="56.0" cy="16.0" r="3" fill="#dc2626"/>',  # 2024-02: 100 % in month 0
    ]


def test_retention_chart_keeps_months_without_a_rate_as_gaps(tmp_path: Path) -> None:
    # No purchase in March: April has no previous customers, so no rate.
    src = tmp_path / "tx.csv"
    src.write_text(
        "customer_id,timestamp,amount\n"
        "a,2024-01-05,10\na,2024-02-05,10\na,2024-04-05,10\na,2024-05-05,10\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "report.json").read_text())["metrics"]["retention"]["rows"]
    assert [(r["period"], r["retention_rate"]) for r in rows] == [
        ("2024-01", None), ("2024-02", 100.0), ("2024-03", 0.0), ("2024-04", None),
        ("2024-05", 100.0),
    ]  # fmt: skip
    html = (out / "report.html").read_text()
    section = _section(html, "Monthly retention and churn")
    assert all(f">2024-0{m}</text>" in section for m in range(1, 6))
    # Five positions 128.5 apart: February to March is a line, then a gap, then May.
    assert _marks(html, "Monthly retention and churn") == [
        '<polyline fill="none" stroke="#2563eb" stroke-width="2" points="184.5,16.0 313.0,252.0"/>',
        '<circle cx="570.0" cy="16.0" r="3" fill="#2563eb"/>',
        '<polyline fill="none" stroke="#dc2626" stroke-width="2" points="184.5,252.0 313.0,16.0"/>',
        '<circle cx="570.0" cy="252.0" r="3" fill="#dc2626"/>',
    ]


def test_nps_line_breaks_at_months_without_answers(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    (tmp_path / "answers.csv").write_text(
        "customer_id,timestamp,question,score\n"
        "a,2024-01-05,nps,10\nb,2024-01-06,nps,3\nc,2024-03-05,nps,9\nd,2024-04-05,nps,9\n"
    )
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(out), "--format", "json",
            "--surveys", str(tmp_path / "answers.csv")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    # NPS 0 in January (a dot), nothing in February, 100 in March and April (a line).
    nps, index = _marks(html, "NPS trend")[:2], _marks(html, "NPS trend")[2:]
    assert nps == [
        '<circle cx="56.0" cy="134.0" r="3" fill="#2563eb"/>',
        '<polyline fill="none" stroke="#2563eb" stroke-width="2" points="398.7,16.0 570.0,16.0"/>',
    ]
    assert [m.replace("#dc2626", "#2563eb") for m in index] == nps  # same answers


def test_report_without_enough_repeat_customers_explains_the_missing_clv(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    assert data["clv_models"] == {
        "error": "only 1 customer bought on more than one day (the models count a day's "
        "purchases as one); the models need at least 10"
    }
    assert "only 1 customer bought on more than one day" in (out / "report.html").read_text()


def test_report_memory_limit_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text(TX)
    out = tmp_path / "out"
    args = ["report", str(tmp_path / "tx.csv"), "--out", str(out), "--format", "json",
            "--memory-limit", "lots"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "usage"
    assert error["message"].startswith("memory limit 'lots' is not a size DuckDB understands")
    assert not out.exists()


def test_memory_limit_reaches_duckdb_and_spills_to_a_private_directory(tmp_path: Path) -> None:
    from fidelite.analytics.io import LoadOptions, load_transactions

    (tmp_path / "tx.csv").write_text(TX)
    loaded = load_transactions(tmp_path / "tx.csv", LoadOptions(memory_limit="256MB"))
    limit, spill = loaded.connection.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchone() or (None, None)
    assert limit == "244.1 MiB"  # DuckDB shows 256 MB in MiB
    assert Path(str(spill)).name.startswith("fidelite-duckdb-")


def test_a_customer_whose_repeats_are_worth_0_is_left_out_of_the_clv_chart(
    tmp_path: Path,
) -> None:
    """One repeat customer with zero-amount repeat days has no CLV (Gamma-Gamma describes
    positive spends): the chart shows the others and says who is not counted, instead of
    giving way to "the CLV of 1 customer is not a finite number"."""
    src = tmp_path / "tx.csv"
    _history(src)
    with src.open("a") as file:
        file.write("zero,2023-03-01,12.50\nzero,2023-05-01,0\nzero,2023-09-01,0\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    clv = json.loads((out / "report.json").read_text())["clv_models"]["clv"]
    assert "error" not in clv
    assert (clv["customers"], clv["customers_left_out"]) == (300, 1)
    assert sum(b["customers"] for b in clv["histogram"]) == 300
    assert clv["note"] == (
        "1 customer whose repeat purchases are worth 0 is left out: the spend model "
        "describes positive spends, so it gives them no value"
    )
    html = (out / "report.html").read_text()
    assert "Customer lifetime value (next 12 months)" in html
    assert f"Not counted: {escape(clv['note'])}." in html
