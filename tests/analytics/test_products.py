"""Multi-product buyers and basket affinity, hand-computed on a small file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.engine import EngineName, open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.products import basket_affinity, multi_product
from tests.cli.support import fidelite

# Baskets (orders): o1 {ESP, CRO}, o2 {ESP}, o3 {ESP, CRO, MUF}, o4 {MUF}, o5 {MUF},
# o6 {ESP}; o7 is a refund (ignored). Repeat customers: a (o1, o2) and c (o4, o5).
TX = """
customer_id,timestamp,amount,order_id,product_id,category,refund
a,2024-01-01 10:00,5,o1,ESP,coffee,false
a,2024-01-01 10:00,3,o1,CRO,pastry,false
a,2024-01-05 10:00,5,o2,ESP,coffee,false
b,2024-01-02 10:00,5,o3,ESP,coffee,false
b,2024-01-02 10:00,3,o3,CRO,pastry,false
b,2024-01-02 10:00,4,o3,MUF,pastry,false
c,2024-01-03 10:00,4,o4,MUF,pastry,false
c,2024-01-04 10:00,4,o5,MUF,pastry,false
d,2024-01-03 10:00,5,o6,ESP,coffee,false
d,2024-01-04 10:00,9,o7,TEA,tea,true
"""


@pytest.fixture
def tx(write_csv: Callable[..., Path]) -> Path:
    return write_csv(TX)


def test_multi_product_and_multi_category(tx: Path) -> None:
    ds = open_dataset(tx)
    (row,) = multi_product(ds).rows
    # a bought ESP and CRO over two orders; c only MUF; b and d have one order each
    assert row == {
        "customers": 4,
        "repeat_customers": 2,
        "multi_product_customers": 1,
        "multi_product_rate": 50.0,
    }
    (cat,) = multi_product(ds, "category").rows
    assert (cat["multi_category_customers"], cat["multi_category_rate"]) == (1, 50.0)


def test_basket_affinity_support_confidence_lift(tx: Path) -> None:
    result = basket_affinity(open_dataset(tx), min_support=0)
    assert result.parameters["baskets"] == 6
    pairs = {(r["a"], r["b"]): r for r in result.rows}
    assert list(pairs) == [("CRO", "ESP"), ("CRO", "MUF"), ("ESP", "MUF")]
    cro_esp = pairs[("CRO", "ESP")]
    # both in o1 and o3 of 6 baskets; CRO in 2 baskets, ESP in 4: lift 2*6 / (2*4)
    assert (
        cro_esp["support"],
        cro_esp["confidence_a_to_b"],
        cro_esp["confidence_b_to_a"],
        cro_esp["lift"],
    ) == (33.3333, 100.0, 50.0, 1.5)
    assert pairs[("ESP", "MUF")]["lift"] == 0.5  # 1 * 6 / (4 * 3)
    # min support 20 %: only the CRO/ESP pair (33 %) stays
    kept = basket_affinity(open_dataset(tx), min_support=20).rows
    assert [(r["a"], r["b"]) for r in kept] == [("CRO", "ESP")]


def test_basket_definition_names_the_level_in_the_plural(tx: Path) -> None:
    by_product = basket_affinity(open_dataset(tx), min_support=0).definition
    by_category = basket_affinity(open_dataset(tx), by="category", min_support=0).definition
    assert by_product.startswith("Pairs of products bought in the same basket")
    assert by_category.startswith("Pairs of categories bought in the same basket")


def test_basket_without_order_ids_uses_customer_and_day(write_csv: Callable[..., Path]) -> None:
    text = """
    customer_id,timestamp,amount,product_id
    a,2024-01-01 09:00,5,ESP
    a,2024-01-01 17:00,3,CRO
    a,2024-01-02 09:00,5,ESP
    """
    result = basket_affinity(open_dataset(write_csv(text)), min_support=0)
    assert result.parameters["baskets"] == 2
    assert [(r["a"], r["b"], r["baskets_with_both"]) for r in result.rows] == [("CRO", "ESP", 1)]


def test_product_metrics_need_the_product_column(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\na,2024-01-01,5\n")
    with pytest.raises(InputError) as err:
        multi_product(open_dataset(path))
    assert (err.value.column, err.value.reason) == (
        "product_id",
        "this metric needs a 'product_id' column",
    )


def test_basket_cli_json(tx: Path) -> None:
    proc = fidelite("metrics", "basket", "--input", tx, "--min-support", "20", "-f", "json")
    out = json.loads(proc.stdout)
    assert out["metric"] == "basket" and out["rows"][0]["lift"] == 1.5


# Baskets: a {p1, p2}, b {p3, p4}, c {p1}, d {p5}: both pairs in 1 of 4 baskets; p3-p4
# has lift 1 x 4 / (1 x 1) = 4, p1-p2 1 x 4 / (2 x 1) = 2.
BK2 = """
customer_id,timestamp,amount,order_id,product_id
a,2024-01-01,1,1,p1
a,2024-01-01,1,1,p2
b,2024-01-01,1,1,p3
b,2024-01-01,1,1,p4
c,2024-01-01,1,1,p1
d,2024-01-01,1,1,p5
"""


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.slow)])
def test_basket_top_keeps_the_first_pairs_of_the_shown_order(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    ds = open_dataset(write_csv(BK2), engine=engine)
    full = basket_affinity(ds, min_support=0, top=50).rows
    assert [(r["a"], r["b"], r["baskets_with_both"], r["lift"]) for r in full] == [
        ("p3", "p4", 1, 4.0),
        ("p1", "p2", 1, 2.0),
    ]
    top = basket_affinity(ds, min_support=0, top=1).rows
    assert top == full[:1]


def test_basket_min_support_at_exactly_the_threshold_is_kept(
    write_csv: Callable[..., Path],
) -> None:
    # 25 baskets (one per customer), 7 of them {p1, p2}: support 28 %, and the double
    # 0.28 x 25 is 7.000000000000001.
    lines = ["customer_id,timestamp,amount,order_id,product_id"]
    for c in range(25):
        lines.append(f"c{c},2024-01-01,1,1,p1")
        if c < 7:
            lines.append(f"c{c},2024-01-01,1,1,p2")
    ds = open_dataset(write_csv("\n".join(lines)))
    kept = basket_affinity(ds, min_support=28).rows
    assert [(r["a"], r["b"], r["baskets_with_both"], r["support"]) for r in kept] == [
        ("p1", "p2", 7, 28.0)
    ]
    assert basket_affinity(ds, min_support=28.01).rows == []
    # 0.5 % of 25 baskets is 0.125: one basket is enough.
    assert len(basket_affinity(ds, min_support=0.5).rows) == 1
