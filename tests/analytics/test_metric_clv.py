"""Simple CLV: the lifespan from monthly churn (or given), hand-computed on small files;
and a file with no purchase at all: null figures and a note, no crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.clv import simple_clv
from tests.cli.support import fidelite

ONLY_REFUNDS = """
customer_id,timestamp,amount
a,2024-01-01,-5
b,2024-01-03,-7
"""


def test_simple_clv_without_purchases_is_null_with_a_note(
    write_csv: Callable[..., Path],
) -> None:
    result = simple_clv(open_dataset(write_csv(ONLY_REFUNDS)))
    assert result.rows == [
        {
            "average_order_value": None,
            "purchases_per_year": None,
            "lifespan_years": None,
            "lifespan_source": "from churn",
            "monthly_churn_rate": None,
            "churn_months": 0,
            "clv": None,
            "customers": 0,
            "orders": 0,
            "observed_years": round(3 / 365.25, 4),  # Jan 1 to Jan 3, inclusive
        }
    ]
    assert result.summary == {
        "note": "no purchases in the data (every row is a refund): CLV is undefined"
    }


def test_simple_clv_without_purchases_keeps_a_given_lifespan_and_no_value(
    write_csv: Callable[..., Path],
) -> None:
    row = simple_clv(open_dataset(write_csv(ONLY_REFUNDS)), lifespan_years=2.0).rows[0]
    assert (row["lifespan_years"], row["lifespan_source"], row["clv"]) == (2.0, "given", None)


def test_clv_cli_and_report_on_a_file_of_refunds(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_csv(ONLY_REFUNDS)
    proc = fidelite("metrics", "clv", "-i", path, "-f", "json")
    out = json.loads(proc.stdout)
    assert (out["rows"][0]["clv"], out["rows"][0]["orders"]) == (None, 0)
    assert "every row is a refund" in out["summary"]["note"]
    fidelite("report", path, "--out", tmp_path / "rep")
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["metrics"]["clv"]["rows"][0]["average_order_value"] is None
    html = (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
    assert "<th>Simple CLV</th><td>n/a</td>" in html
    assert "None" not in html


# Complete months: January, February, March (the data run from Jan 1 to Apr 10, so
# April is cut short and not measured). Active: Jan a b c d; Feb a b c (d lost: 1 of 4);
# Mar a e (b and c lost: 2 of 3). Pooled monthly churn = 3 / 7 (the mean of the two
# monthly rates, 25 % and 66.7 %, would be 45.8 %); lifespan = 1 / (12 x 3/7) = 7/36 year.
CHURN = """
customer_id,timestamp,amount
a,2024-01-01,10
b,2024-01-10,20
c,2024-01-15,30
d,2024-01-20,40
a,2024-02-05,10
b,2024-02-10,20
c,2024-02-15,30
a,2024-03-05,10
e,2024-03-31,50
a,2024-04-10,10
"""


def _clv(path: Path, *args: str) -> dict[str, Any]:
    proc = fidelite("metrics", "clv", "-i", path, *args, "-f", "json")
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_clv_lifespan_from_pooled_monthly_churn_of_complete_months(
    write_csv: Callable[..., Path],
) -> None:
    out = _clv(write_csv(CHURN))
    # 10 orders, 5 customers, revenue 230: AOV 23; 101 observed days (Jan 1 - Apr 10);
    # per year = 10 / 5 / (101 / 365.25); CLV = 23 x that x 7/36 = 117610.5 / 3636.
    assert out["rows"] == [
        {
            "average_order_value": 23.0,
            "purchases_per_year": round(2 * 365.25 / 101, 4),
            "lifespan_years": round(7 / 36, 4),
            "lifespan_source": "from churn",
            "monthly_churn_rate": round(300 / 7, 4),
            "churn_months": 2,
            "clv": 32.35,
            "customers": 5,
            "orders": 10,
            "observed_years": round(101 / 365.25, 4),
        }
    ]
    assert "summary" not in out
    params = out["parameters"]
    assert (params["observation_start"], params["observation_end"]) == ("2024-01-01", "2024-04-10")
    assert "1 / (12 x monthly churn)" in out["definition"]
    assert "lower bound" not in out["definition"]


def test_clv_does_not_shrink_to_the_customers_time_between_purchases(
    write_csv: Callable[..., Path],
) -> None:
    # a and b each bought 100 on Jan 1, 2, 3; z once on Dec 31. The lifespan was the
    # mean first-to-last purchase span (2.3 days), giving a CLV of 1.49. Now: 12 complete
    # months, both January customers lost in February (monthly churn 100 %, lifespan one
    # month); 7 orders / 3 customers / (366 / 365.25) a year.
    text = "customer_id,timestamp,amount\n" + "".join(
        f"{c},2024-01-0{d},100\n" for c in "ab" for d in (1, 2, 3)
    )
    (row,) = _clv(write_csv(text + "z,2024-12-31,100\n"))["rows"]
    per_year = 7 / 3 / (366 / 365.25)
    assert (row["lifespan_years"], row["lifespan_source"]) == (round(1 / 12, 4), "from churn")
    assert (row["monthly_churn_rate"], row["churn_months"]) == (100.0, 11)
    assert row["clv"] == round(100 * per_year / 12, 2) == 19.4


def test_clv_without_two_complete_months_asks_for_a_lifespan(
    write_csv: Callable[..., Path],
) -> None:
    text = "customer_id,timestamp,amount\n" + "".join(
        f"{c},2024-01-0{d},100\n" for c in "ab" for d in (1, 2, 3)
    )
    path = write_csv(text)
    out = _clv(path)
    (row,) = out["rows"]
    assert (row["average_order_value"], row["lifespan_years"], row["clv"]) == (100.0, None, None)
    assert out["summary"]["note"] == (
        "the lifespan comes from monthly churn, which needs two consecutive complete "
        "calendar months, and the data (2024-01-01 to 2024-01-03) hold no complete month: "
        "CLV is undefined; give the expected lifespan with --lifespan-years"
    )
    # A given lifespan still works: 100 x (6 / 2 / (3 / 365.25)) x 2.
    (given,) = _clv(path, "--lifespan-years", "2")["rows"]
    assert (given["lifespan_years"], given["lifespan_source"], given["clv"]) == (
        2.0,
        "given",
        73050.0,
    )


def test_clv_with_no_customer_lost_asks_for_a_lifespan(write_csv: Callable[..., Path]) -> None:
    text = """
    customer_id,timestamp,amount
    a,2024-01-01,10
    b,2024-01-31,10
    a,2024-02-10,10
    b,2024-02-29,10
    """
    out = _clv(write_csv(text))
    (row,) = out["rows"]
    assert (row["monthly_churn_rate"], row["churn_months"], row["clv"]) == (0.0, 1, None)
    assert out["summary"]["note"].startswith("no customer was lost over 1 complete months")


def test_report_key_figures_show_a_clv_from_churn_and_na_without_one(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    for name, text, shown in (
        ("churn.csv", CHURN, "32.35"),
        ("short.csv", "customer_id,timestamp,amount\na,2024-01-01,5\na,2024-01-02,5", "n/a"),
    ):
        out = tmp_path / f"report-{name}"
        fidelite("report", write_csv(text, name), "--out", out)
        html = (out / "report.html").read_text(encoding="utf-8")
        assert f"<th>Simple CLV</th><td>{shown}</td>" in html


# Purchases January to March, then only refunds (20 April, 31 May): the data cover April
# and May, where a is lost. The churn table lists them, so its months add up to the
# simple CLV's pooled monthly churn (February to May: 2 lost of 5 at the start).
REFUNDS_AFTER_LAST_PURCHASE = """
customer_id,timestamp,amount
a,2024-01-01T10:00:00,10
b,2024-01-01T10:00:00,10
a,2024-02-01T10:00:00,10
b,2024-02-01T10:00:00,10
a,2024-03-01T10:00:00,10
a,2024-04-20T10:00:00,-10
a,2024-05-31T10:00:00,-5
"""


def test_churn_lists_the_months_after_the_last_purchase_that_clv_counts(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(REFUNDS_AFTER_LAST_PURCHASE)
    out = json.loads(fidelite("metrics", "churn", "-i", str(path), "-f", "json").stdout)
    rows = [(r["period"], r["customers_start"], r["lost"], r["churn_rate"]) for r in out["rows"]]
    assert rows == [
        ("2024-01", 0, 0, None),
        ("2024-02", 2, 0, 0.0),
        ("2024-03", 2, 1, 50.0),
        ("2024-04", 1, 1, 100.0),
        ("2024-05", 0, 0, None),
    ]
    (clv,) = simple_clv(open_dataset(path)).rows
    measured = [r for r in rows if r[0] >= "2024-02"]
    lost, start = sum(r[2] for r in measured), sum(r[1] for r in measured)
    assert (lost, start) == (2, 5)
    assert clv["monthly_churn_rate"] == 40.0 == 100 * lost / start
    assert clv["churn_months"] == 4
