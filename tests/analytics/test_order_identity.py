"""An order is one customer's order id: the same id under two customers is two orders.

Order ids are per customer in every metric (RFM, repeat rate, repurchase, multi-product,
CLV, basket): shops often number each customer's orders 1, 2, 3... or reuse ids.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MetricsJson = Callable[..., dict[str, Any]]

# Each customer numbers their own orders 1 and 2: four orders, four baskets of one
# product each; p1 and p2 are never in one basket (a's order 1 holds p1, b's holds p2).
OID = """
customer_id,timestamp,amount,order_id,product_id
a,2024-01-01,10,1,p1
a,2024-01-05,10,2,p2
b,2024-01-02,30,1,p2
b,2024-01-09,30,2,p3
"""


@pytest.fixture
def oid(write_csv: Callable[..., Path]) -> Path:
    return write_csv(OID, "oid.csv")


def test_clv_counts_each_customers_orders(oid: Path, metrics_json: MetricsJson) -> None:
    (row,) = metrics_json("clv", "-i", str(oid), "--lifespan-years", "1")["rows"]
    # 4 orders, revenue 80: AOV 20; 4 orders / 2 customers / (9 days / 365.25) a year
    assert (row["orders"], row["customers"], row["average_order_value"]) == (4, 2, 20.0)
    assert row["purchases_per_year"] == round(4 / 2 / (9 / 365.25), 4)
    assert row["clv"] == round(20 * 4 / 2 / (9 / 365.25) * 1, 2)


def test_basket_pairs_only_products_of_one_customers_order(
    oid: Path, metrics_json: MetricsJson
) -> None:
    out = metrics_json("basket", "-i", str(oid), "--min-support", "0")
    assert out["parameters"]["baskets"] == 4
    assert out["rows"] == []
    assert "basket = customer and order_id" in out["definition"]


def test_every_metric_counts_the_same_four_orders(oid: Path, metrics_json: MetricsJson) -> None:
    rfm = {r["customer_id"]: r["frequency"] for r in metrics_json("rfm", "-i", str(oid))["rows"]}
    assert rfm == {"a": 2, "b": 2}
    (repeat,) = metrics_json("repeat-rate", "-i", str(oid))["rows"]
    assert (repeat["customers"], repeat["repeat_customers"]) == (2, 2)
    (multi,) = metrics_json("multi-product", "-i", str(oid))["rows"]
    assert (multi["repeat_customers"], multi["multi_product_customers"]) == (2, 2)
