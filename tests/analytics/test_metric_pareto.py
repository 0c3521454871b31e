"""Pareto shares stay within 0-100 when refunds push a customer's net revenue to 0 or below."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.pareto import curve, pareto
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
    result = pareto(open_dataset(write_csv("customer_id,timestamp,amount\na,2024-01-01,-5")))
    assert result.rows == []
    assert (
        result.summary["ranked_customers"],
        result.summary["customers_without_revenue"],
        result.summary["top_customers"],
        result.summary["top_revenue_share"],
    ) == (0, 1, 0, None)


def test_pareto_cli_share_stays_within_100(write_csv: Callable[..., Path]) -> None:
    proc = fidelite("metrics", "pareto", "-i", write_csv(TX), "--top", "34", "-f", "json")
    assert json.loads(proc.stdout)["summary"]["top_revenue_share"] == 90.9091
