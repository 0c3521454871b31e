"""Pareto shares stay within 0-100 when refunds push a customer's net revenue to 0 or below."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.clv import simple_clv
from fidelite.analytics.metrics.pareto import curve, pareto
from fidelite.analytics.metrics.products import multi_product
from fidelite.analytics.metrics.repeat import repeat_rate
from fidelite.analytics.metrics.rfm import rfm
from tests.cli.support import fidelite

# a 100; b buys 50 and gets 80 back (a refund of an older purchase): -30; c 10;
# d buys 0.1 + 0.2 and returns 0.3: 0 (the doubles sum to 5.6e-17).
TX = """
customer_id,timestamp,amount
a,2024-01-01,100
b,2024-01-01,50
b,2024-01-02,-80
c,2024-01-01,10
d,2024-01-01,0.1
d,2024-01-01,0.2
d,2024-01-03,-0.3
"""


def test_pareto_ranks_only_customers_with_revenue(write_csv: Callable[..., Path]) -> None:
    result = pareto(open_dataset(write_csv(TX)), 34.0)
    # Ranked: a 100, c 10 (total 110). Top ceil(34 % x 2) = 1 customer: 100 / 110.
    assert result.summary == {
        "customers": 4,
        "ranked_customers": 2,
        "customers_without_revenue": 2,
        "excluded_revenue": -30.0,
        "refund_only_customers": 0,
        "refund_only_revenue": 0.0,
        "top_customers": 1,
        "revenue": 110.0,
        "top_revenue": 100.0,
        "top_revenue_share": 90.9091,
    }
    assert result.rows == [
        {
            "rank": 1,
            "customer_id": "a",
            "revenue": 100.0,
            "revenue_share": 90.9091,
            "cumulative_share": 90.9091,
        }
    ]


def test_pareto_everyone_ranked_adds_up_to_100(write_csv: Callable[..., Path]) -> None:
    result = pareto(open_dataset(write_csv(TX)), 100.0)
    assert [(r["customer_id"], r["cumulative_share"]) for r in result.rows] == [
        ("a", 90.9091),
        ("c", 100.0),
    ]
    assert result.summary["top_revenue_share"] == 100.0
    points = curve(open_dataset(write_csv(TX)), points=2)
    assert points == [
        {"customers_share": 0.0, "revenue_share": 0.0},
        {"customers_share": 50.0, "revenue_share": 90.9091},
        {"customers_share": 100.0, "revenue_share": 100.0},
    ]


def test_pareto_without_any_revenue_has_no_share(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\na,2024-01-01,5\na,2024-01-02,-5")
    result = pareto(open_dataset(path))
    assert result.rows == []
    assert (
        result.summary["customers"],
        result.summary["ranked_customers"],
        result.summary["customers_without_revenue"],
        result.summary["top_customers"],
        result.summary["top_revenue_share"],
    ) == (1, 0, 1, 0, None)


# e: refunds only (of purchases older than the file); a buys twice, b once.
REFUND_ONLY = """
customer_id,timestamp,amount,product_id
a,2024-01-01,40,A
a,2024-01-05,20,B
b,2024-01-02,30,A
e,2024-01-03,-25,A
e,2024-01-04,-5,B
"""


def test_pareto_counts_customers_who_bought_as_rfm_and_clv_do(
    write_csv: Callable[..., Path],
) -> None:
    ds = open_dataset(write_csv(REFUND_ONLY))
    result = pareto(ds, 50.0)
    assert result.summary == {
        "customers": 2,
        "ranked_customers": 2,
        "customers_without_revenue": 0,
        "excluded_revenue": 0.0,
        "refund_only_customers": 1,
        "refund_only_revenue": -30.0,
        "top_customers": 1,
        "revenue": 90.0,
        "top_revenue": 60.0,
        "top_revenue_share": 66.6667,
    }
    assert sorted(r["customer_id"] for r in rfm(ds).rows) == ["a", "b"]
    assert simple_clv(ds).rows[0]["customers"] == 2


def test_only_refunds_give_the_same_empty_answers_everywhere(
    write_csv: Callable[..., Path],
) -> None:
    """Whole-file metrics keep their one row (0 customers, null rates); per-customer and
    per-period metrics have no rows."""
    path = write_csv(
        "customer_id,timestamp,amount,product_id\na,2024-01-01,-10,A\nb,2024-01-02,-5,B"
    )
    ds = open_dataset(path)
    assert repeat_rate(ds).rows == [
        {"customers": 0, "repeat_customers": 0, "repeat_purchase_rate": None}
    ]
    assert multi_product(ds).rows == [
        {
            "customers": 0,
            "repeat_customers": 0,
            "multi_product_customers": 0,
            "multi_product_rate": None,
        }
    ]
    assert repeat_rate(ds, "month").rows == []
    assert rfm(ds).rows == []
    result = pareto(ds)
    assert result.rows == []
    assert result.summary == {
        "customers": 0,
        "ranked_customers": 0,
        "customers_without_revenue": 0,
        "excluded_revenue": 0.0,
        "refund_only_customers": 2,
        "refund_only_revenue": -15.0,
        "top_customers": 0,
        "revenue": 0.0,
        "top_revenue": 0.0,
        "top_revenue_share": None,
    }
    clv = simple_clv(ds).rows[0]
    assert (clv["customers"], clv["orders"], clv["clv"]) == (0, 0, None)


def test_pareto_cli_share_stays_within_100(write_csv: Callable[..., Path]) -> None:
    proc = fidelite("metrics", "pareto", "-i", write_csv(TX), "--top", "34", "-f", "json")
    assert json.loads(proc.stdout)["summary"]["top_revenue_share"] == 90.9091
