"""Hand-computed values for every metric family on small files, with edge cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.io import LoadOptions
from fidelite.analytics.metrics.clv import simple_clv
from fidelite.analytics.metrics.cohorts import cohorts
from fidelite.analytics.metrics.pareto import pareto
from fidelite.analytics.metrics.repeat import repeat_rate
from fidelite.analytics.metrics.repurchase import repurchase
from fidelite.analytics.metrics.retention import new_vs_returning, retention
from fidelite.analytics.metrics.rfm import rfm

# A: Jan 3 (2 orders), Feb 10, Apr 2.  B: Jan 20, refund Jan 25.  C: Feb 5, Feb 6 (P2).
# D: Apr 30 only. No purchase at all in March: an empty month.
TX = """
customer_id,timestamp,amount,order_id,product_id,refund
A,2024-01-03 09:00,10,o1,P1,false
A,2024-01-03 17:00,20,o2,P2,false
B,2024-01-20 12:00,50,o3,P1,false
B,2024-01-25 12:00,50,o3r,P1,true
C,2024-02-05 12:00,5,o4,P1,false
C,2024-02-06 12:00,15,o5,P2,false
A,2024-02-10 12:00,30,o6,P1,false
A,2024-04-02 12:00,40,o7,P1,false
D,2024-04-30 12:00,100,o8,P3,false
"""


@pytest.fixture
def tx(write_csv: Callable[..., Path]) -> Path:
    return write_csv(TX)


def test_retention_lists_empty_month_and_reactivation(tx: Path) -> None:
    rows = {r["period"]: r for r in retention(open_dataset(tx), "month").rows}
    assert list(rows) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    # Feb: S = {A, B}, E = {C, A}: A retained, B lost, C new.
    feb = rows["2024-02"]
    assert (feb["customers_start"], feb["retained"], feb["lost"], feb["new"]) == (2, 1, 1, 1)
    assert (feb["retention_rate"], feb["churn_rate"]) == (50.0, 50.0)
    # March is empty: everyone from February is lost.
    mar = rows["2024-03"]
    assert (mar["customers_start"], mar["customers_end"], mar["churn_rate"]) == (2, 0, 100.0)
    # April: S = 0 (rates undefined); A comes back (reactivated), D is first-time.
    apr = rows["2024-04"]
    assert (apr["first_time"], apr["reactivated"], apr["retention_rate"]) == (1, 1, None)


def test_new_vs_returning_counts_first_purchase_month(tx: Path) -> None:
    rows = {r["period"]: r for r in new_vs_returning(open_dataset(tx), "month").rows}
    assert (rows["2024-02"]["new"], rows["2024-02"]["returning"]) == (1, 1)
    assert (rows["2024-04"]["new"], rows["2024-04"]["returning"]) == (1, 1)
    assert rows["2024-03"]["customers"] == 0


def test_retention_and_new_vs_returning_share_one_count_per_dataset(tx: Path) -> None:
    ds = open_dataset(tx)
    kept = retention(ds, "month").rows
    split = new_vs_returning(ds, "month").rows
    assert [k for k in ds._memo if k[0] == "retention.counts"] == [("retention.counts", "month")]
    # the same active customers and first-time buyers, whichever metric reads them
    assert [(r["customers_end"], r["first_time"]) for r in kept] == [
        (r["customers"], r["new"]) for r in split
    ]
    assert [r["customers_end"] for r in kept] == [2, 2, 0, 2]
    retention(ds, "week")
    assert ("retention.counts", "week") in ds._memo


def test_remember_computes_once_per_key(tx: Path) -> None:
    ds = open_dataset(tx)
    calls: list[str] = []

    def compute(name: str) -> Callable[[], str]:
        return lambda: calls.append(name) or name  # type: ignore[func-returns-value]

    assert [ds.remember("a", compute("a")), ds.remember("a", compute("a2"))] == ["a", "a"]
    assert ds.remember("b", compute("b")) == "b"
    assert calls == ["a", "b"]


def test_repeat_rate_counts_same_day_orders(tx: Path) -> None:
    overall = repeat_rate(open_dataset(tx)).rows
    # Orders: A 4, B 1 (the refund is not a purchase), C 2, D 1 -> 2 of 4 repeat.
    assert overall == [{"customers": 4, "repeat_customers": 2, "repeat_purchase_rate": 50.0}]
    jan = repeat_rate(open_dataset(tx), "month").rows[0]
    assert (jan["customers"], jan["repeat_customers"]) == (2, 1)  # A's two Jan 3 orders


def test_repurchase_counts_same_day_second_order(tx: Path) -> None:
    rows = {r["cohort"]: r for r in repurchase(open_dataset(tx), [0, 1, 60]).rows}
    # Jan cohort A (second order same day), B (none). Feb cohort C (next day).
    assert rows["2024-01"]["repurchase_rate_0d"] == 50.0
    assert rows["2024-02"]["repurchase_rate_0d"] == 0.0
    assert rows["2024-02"]["repurchase_rate_1d"] == 100.0
    assert rows["2024-04"]["customers"] == 1
    assert rows["2024-01"]["complete_60d"] is True  # data ends Apr 30 >= Jan 31 + 60
    assert rows["2024-04"]["complete_1d"] is False


def test_repurchase_per_product_needs_same_product(tx: Path) -> None:
    rows = repurchase(open_dataset(tx), [60], per_product=True).rows
    by = {(r["cohort"], r["product_id"]): r for r in rows}
    # A bought P1 Jan 3 then Feb 10 (38 days): repurchased; A's P2 never again.
    assert by[("2024-01", "P1")]["customers"] == 2  # A and B
    assert by[("2024-01", "P1")]["repurchased_60d"] == 1
    assert by[("2024-01", "P2")]["repurchased_60d"] == 0


def test_cohorts_nday_unbounded_and_bracket(tx: Path) -> None:
    ds = open_dataset(tx)
    jan = cohorts(ds, "month", "n-day").rows[0]
    assert (jan["size"], jan["month_0"], jan["month_1"], jan["month_2"], jan["month_3"]) == (
        2,
        100.0,
        50.0,
        0.0,
        50.0,
    )
    unb = cohorts(ds, "month", "unbounded").rows[0]
    assert (unb["month_1"], unb["month_2"], unb["month_3"]) == (50.0, 50.0, 50.0)
    apr = cohorts(ds, "month", "n-day").rows[-1]
    assert (apr["cohort"], apr["month_0"], apr["month_1"]) == ("2024-04", 100.0, None)
    br = {r["cohort"]: r for r in cohorts(ds, "month", "bracket", [(1, 7), (8, 90)]).rows}
    assert (br["2024-01"]["days_1_7"], br["2024-01"]["days_8_90"]) == (0.0, 50.0)
    assert br["2024-02"]["days_1_7"] == 100.0


def test_rfm_scores_and_segments(tx: Path) -> None:
    rows = {r["customer_id"]: r for r in rfm(open_dataset(tx)).rows}
    # End = Apr 30. Recency: A 28, B 101, C 84, D 0. Orders: A 4, B 1, C 2, D 1.
    # Net revenue: A 100, B 0 (50 - 50 refund), C 20, D 100.
    assert (rows["A"]["recency"], rows["A"]["frequency"], rows["A"]["monetary"]) == (28, 4, 100.0)
    assert (rows["B"]["recency"], rows["B"]["monetary"], rows["B"]["T"]) == (101, 0.0, 101)
    # Score = floor(5 x customers worse / 4) + 1 (a tie group shares its lowest).
    # R: B 0 worse -> 1; C 1 -> 2; A 2 -> 3; D 3 -> floor(15 / 4) + 1 = 4.
    assert [rows[c]["r_score"] for c in "BCAD"] == [1, 2, 3, 4]
    # F: B and D tie at 1 order, 0 worse -> 1; C 2 worse -> 3; A 3 worse -> 4.
    assert [rows[c]["f_score"] for c in "BDCA"] == [1, 1, 3, 4]
    # M: A and D tie at 100 with 2 worse -> 3; B worst -> 1; C 1 worse -> 2.
    assert [rows[c]["m_score"] for c in "ADBC"] == [3, 3, 1, 2]
    assert [rows[c]["segment"] for c in "ABCD"] == [
        "loyal",  # R3 F4
        "lost",  # R1 F1
        "at risk",  # R2 F3
        "promising",  # R4 F1
    ]


def test_pareto_top_share_and_ties(tx: Path) -> None:
    result = pareto(open_dataset(tx), 50.0)
    # Revenue: A 100, D 100, C 20, B 0 -> top 2 of 4 = 200 / 220.
    assert result.summary["top_customers"] == 2
    assert result.summary["top_revenue_share"] == round(100 * 200 / 220, 4)
    assert [r["customer_id"] for r in result.rows] == ["A", "D"]  # tie broken by id


def test_simple_clv_formula(tx: Path) -> None:
    row = simple_clv(open_dataset(tx), lifespan_years=2.0).rows[0]
    # Net revenue 220 over 8 orders -> AOV 27.5. Span Jan 3 - Apr 30 = 119 days.
    per_year = 8 / 4 / (119 / 365.25)
    assert row["average_order_value"] == 27.5
    assert row["purchases_per_year"] == round(per_year, 4)
    assert row["clv"] == round(27.5 * per_year * 2.0, 2)


def test_one_customer_file(write_csv: Callable[..., Path]) -> None:
    ds = open_dataset(write_csv("customer_id,timestamp,amount\nA,2024-05-01,9"))
    assert retention(ds, "month").rows[0]["retention_rate"] is None
    assert repeat_rate(ds).rows[0]["repeat_purchase_rate"] == 0.0
    one = rfm(ds).rows[0]  # nobody to compare with: nobody is worse, score 1 everywhere
    assert (one["r_score"], one["f_score"], one["m_score"], one["segment"]) == (
        1,
        1,
        1,
        "lost",
    )
    assert pareto(ds).summary["top_revenue_share"] == 100.0


def test_time_zone_moves_purchase_across_midnight(write_csv: Callable[..., Path]) -> None:
    # 2024-01-31 23:30 UTC is 2024-02-01 00:30 in Paris: February for a Paris business.
    path = write_csv(
        """
        customer_id,timestamp,amount
        A,2024-01-10T10:00:00Z,5
        A,2024-01-31T23:30:00Z,5
        """
    )
    utc = retention(open_dataset(path), "month").rows
    paris = retention(open_dataset(path, options=LoadOptions(timezone="Europe/Paris")), "month")
    assert [r["period"] for r in utc] == ["2024-01"]
    assert [r["period"] for r in paris.rows] == ["2024-01", "2024-02"]
    assert paris.rows[1]["retention_rate"] == 100.0
    assert paris.parameters["timezone"] == "Europe/Paris"


def test_week_periods_start_on_monday(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\nA,2024-03-10,1\nA,2024-03-11,1")
    rows = retention(open_dataset(path), "week").rows
    assert [(r["start"], r["end"]) for r in rows] == [
        (date(2024, 3, 4), date(2024, 3, 10)),
        (date(2024, 3, 11), date(2024, 3, 17)),
    ]
