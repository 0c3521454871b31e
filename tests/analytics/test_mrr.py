"""MRR movements and churn on hand-written subscription files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.mrr import Subscriptions, mrr
from fidelite.analytics.subscriptions import load_subscriptions
from tests.cli.support import fidelite

# A movement dated D counts in the month containing D (MRR read on each month's last day).
# a: 10 from Jan 1 (January's new MRR).  b: basic 10, upgraded to pro 30 on Feb 15
# (expansion +20 in Feb).  c: pro 30 ending on Mar 1 (exclusive: churned in March), back
# on basic 10 on Apr 10 (reactivation).  d: new on basic 10 on Feb 10.
SUBS = """
customer_id,plan,mrr,start,end
a,basic,10,2024-01-01,
b,basic,10,2024-01-01,2024-02-15
b,pro,30,2024-02-15,
c,pro,30,2024-01-01,2024-03-01
d,basic,10,2024-02-10,
c,basic,10,2024-04-10,
"""


@pytest.fixture
def subs(write_csv: Callable[..., Path]) -> Subscriptions:
    return Subscriptions(load_subscriptions(write_csv(SUBS, "subs.csv")))


def _moves(row: dict[str, object]) -> tuple[object, ...]:
    keys = ("starting", "new", "reactivation", "expansion", "contraction", "churned", "ending")
    return tuple(row[f"{k}_mrr"] for k in keys)


def test_mrr_movements_per_month(subs: Subscriptions) -> None:
    rows = {r["period"]: r for r in mrr(subs).rows}
    assert list(rows) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert _moves(rows["2024-01"]) == (0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 50.0)
    assert rows["2024-01"]["gross_mrr_churn_rate"] is None  # no starting MRR
    feb = rows["2024-02"]
    assert _moves(feb) == (50.0, 10.0, 0.0, 20.0, 0.0, 0.0, 80.0)
    assert (feb["gross_mrr_churn_rate"], feb["net_mrr_churn_rate"]) == (0.0, -40.0)
    assert (feb["net_revenue_retention"], feb["negative_churn"]) == (140.0, True)
    mar = rows["2024-03"]
    assert _moves(mar) == (80.0, 0.0, 0.0, 0.0, 0.0, 30.0, 50.0)
    assert mar["revenue_churn"] == 30.0
    assert (mar["gross_mrr_churn_rate"], mar["net_mrr_churn_rate"]) == (37.5, 37.5)
    assert (mar["net_revenue_retention"], mar["negative_churn"]) == (62.5, False)
    assert _moves(rows["2024-04"]) == (50.0, 0.0, 10.0, 0.0, 0.0, 0.0, 60.0)
    assert (rows["2024-04"]["customers_start"], rows["2024-04"]["customers_end"]) == (3, 4)


def test_negative_churn_and_contraction(write_csv: Callable[..., Path]) -> None:
    text = """
    customer_id,mrr,start,end
    a,100,2024-01-01,2024-02-01
    a,150,2024-02-01,
    b,100,2024-01-01,2024-02-20
    b,80,2024-02-20,
    """
    rows = mrr(Subscriptions(load_subscriptions(write_csv(text, "s.csv")))).rows
    # Jan: both start on Jan 1 (new). Feb: a grows 100 -> 150 on Feb 1 (February's
    # expansion), b shrinks to 80 on Feb 20.
    jan, feb = rows
    assert _moves(jan) == (0.0, 200.0, 0.0, 0.0, 0.0, 0.0, 200.0)
    assert _moves(feb) == (200.0, 0.0, 0.0, 50.0, 20.0, 0.0, 230.0)
    assert (feb["gross_mrr_churn_rate"], feb["net_mrr_churn_rate"]) == (10.0, -15.0)
    assert (feb["net_revenue_retention"], feb["negative_churn"]) == (115.0, True)


def test_mrr_per_quarter(subs: Subscriptions) -> None:
    rows = mrr(subs, "quarter").rows
    assert [r["period"] for r in rows] == ["2024-Q1", "2024-Q2"]
    # Dec 31 -> Mar 31: a, b (at 30) and d are new; c starts and stops within the quarter,
    # so it is never seen, and its return on Apr 10 (Mar 31 -> Jun 30) is new, not
    # reactivation.
    assert _moves(rows[0]) == (0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 50.0)
    assert _moves(rows[1]) == (50.0, 10.0, 0.0, 0.0, 0.0, 0.0, 60.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("e,x,-5,2024-01-01,", "line 8, column 'mrr': negative mrr: '-5'"),
        ("e,x,ten,2024-01-01,", "line 8, column 'mrr': missing or unparsable mrr: 'ten'"),
        ("e,x,5,someday,", "line 8, column 'start': missing or unparsable start date"),
        ("e,x,5,2024-03-01,2024-02-01", "line 8, column 'end': end date before the start date"),
    ],
)
def test_bad_subscription_is_one_clear_error(
    write_csv: Callable[..., Path], line: str, message: str
) -> None:
    path = write_csv(SUBS.strip() + "\n" + line, "s.csv")
    with pytest.raises(InputError) as err:
        load_subscriptions(path)
    assert message in str(err.value)


def test_mrr_cli_json(write_csv: Callable[..., Path]) -> None:
    path = write_csv(SUBS, "subs.csv")
    proc = fidelite("metrics", "mrr", "--subscriptions", path, "-f", "json")
    out = json.loads(proc.stdout)
    assert out["metric"] == "mrr"
    assert [r["ending_mrr"] for r in out["rows"]] == [50.0, 80.0, 50.0, 60.0]
    proc = fidelite("metrics", "mrr", "--subscriptions", path, "--period", "week", ok=False)
    assert proc.returncode != 0 and "month, quarter or year" in proc.stderr


def test_converting_from_a_free_trial_is_new_mrr(write_csv: Callable[..., Path]) -> None:
    # d's $0 trial runs on Jan 31: no MRR, so paying 10 from Feb 10 is new (it was once
    # counted as reactivation of the trial).
    text = """
    customer_id,mrr,start,end,plan
    a,20,2024-01-01,,basic
    d,0,2024-01-20,2024-02-10,trial
    d,10,2024-02-10,,basic
    """
    path = write_csv(text, "trial.csv")
    proc = fidelite("metrics", "mrr", "--subscriptions", path, "-f", "json")
    jan, feb = json.loads(proc.stdout)["rows"]
    assert _moves(jan) == (0.0, 20.0, 0.0, 0.0, 0.0, 0.0, 20.0)
    assert _moves(feb) == (20.0, 10.0, 0.0, 0.0, 0.0, 0.0, 30.0)
    assert (feb["customers_start"], feb["customers_end"]) == (1, 2)


def test_a_paying_customer_back_after_a_free_trial_is_reactivation(
    write_csv: Callable[..., Path],
) -> None:
    text = """
    customer_id,mrr,start,end
    a,10,2024-01-01,2024-02-01
    a,0,2024-02-01,2024-03-01
    a,15,2024-03-01,
    """
    jan, feb, mar = mrr(Subscriptions(load_subscriptions(write_csv(text, "s.csv")))).rows
    # Read on Jan 31 (10), Feb 29 (the $0 trial) and Mar 31 (15, from Mar 1).
    assert _moves(jan) == (0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 10.0)
    assert _moves(feb) == (10.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0)
    assert _moves(mar) == (0.0, 0.0, 15.0, 0.0, 0.0, 0.0, 15.0)


# Movements on the first and the last day of a month (ends are exclusive).
# s1 starts Mar 1, s2 starts Mar 31: both March's new MRR.
# e1 ends Mar 1 (last paid day Feb 29) and e2 ends Mar 31: both March churn; e3 ends
# Apr 1 (paid through Mar 31): April churn.
# u1 upgrades 10 -> 30 on Feb 1: February's expansion; u2 on Jan 31: January's.
EDGES = """
customer_id,mrr,start,end
s1,5,2024-03-01,
s2,7,2024-03-31,
e1,20,2023-12-10,2024-03-01
e2,20,2023-12-10,2024-03-31
e3,20,2023-12-10,2024-04-01
u1,10,2023-12-10,2024-02-01
u1,30,2024-02-01,
u2,10,2023-12-10,2024-01-31
u2,30,2024-01-31,
"""


def test_a_movement_counts_in_the_month_of_its_date(write_csv: Callable[..., Path]) -> None:
    result = mrr(Subscriptions(load_subscriptions(write_csv(EDGES, "edges.csv"))))
    rows = {r["period"]: _moves(r) for r in result.rows}
    assert rows == {
        "2023-12": (0.0, 80.0, 0.0, 0.0, 0.0, 0.0, 80.0),
        "2024-01": (80.0, 0.0, 0.0, 20.0, 0.0, 0.0, 100.0),
        "2024-02": (100.0, 0.0, 0.0, 20.0, 0.0, 0.0, 120.0),
        "2024-03": (120.0, 12.0, 0.0, 0.0, 0.0, 40.0, 92.0),
        "2024-04": (92.0, 0.0, 0.0, 0.0, 0.0, 20.0, 72.0),
    }
    march = result.rows[3]
    assert (march["customers_start"], march["customers_end"]) == (5, 5)
    assert "MRR on the last day of the month" in result.definition


def test_quarter_movements_follow_their_dates(write_csv: Callable[..., Path]) -> None:
    path = write_csv(EDGES, "edges.csv")
    rows = mrr(Subscriptions(load_subscriptions(path)), "quarter").rows
    assert [(r["period"], _moves(r)) for r in rows] == [
        ("2023-Q4", (0.0, 80.0, 0.0, 0.0, 0.0, 0.0, 80.0)),
        ("2024-Q1", (80.0, 12.0, 0.0, 40.0, 0.0, 40.0, 92.0)),
        ("2024-Q2", (92.0, 0.0, 0.0, 0.0, 0.0, 20.0, 72.0)),
    ]
