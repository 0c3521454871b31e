"""Product metrics: multi-product buyers and basket affinity (products bought together).

Both need the ``product_id`` column (or ``category`` with ``by="category"``); refunds
are excluded. A basket is an order: one customer's purchases under one ``order_id``
(order ids are per customer: two customers' order 1 are two baskets); without order ids
in the file, a customer's purchases on one local day form one basket.

* **Multi-product buyers** = repeat customers (two or more orders) who bought more than
  one distinct product (category) / repeat customers x 100.
* **Basket affinity** for each pair of products {A, B} bought together in at least one
  basket: support = baskets with both / all baskets x 100; confidence A->B = baskets
  with both / baskets with A x 100 (and B->A); lift = support(A and B) / (support(A) x
  support(B)) with supports as fractions (1 = independent, above 1 = bought together
  more than chance).

Both are computed without a distinct count per customer or per basket, the costly part
on large files (every order its own group): a customer or basket holds two distinct
values exactly when its smallest and largest differ, so one grouping with ``min`` and
``max`` answers "more than one" (nulls are ignored by both, as by a distinct count).
Only baskets with two or more products are then read again, item by item, for the
pairs; a basket of one product counts towards that product's baskets by its ``min``.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.columns import require
from fidelite.analytics.metrics.result import MetricResult, at_least_percent, percent

Level = Literal["product", "category"]


def _column(ds: Dataset, by: Level) -> str:
    return require(ds, "product_id" if by == "product" else "category")


def multi_product(ds: Dataset, by: Level = "product") -> MetricResult:
    """One row: repeat customers and how many bought more than one product (category)."""
    col = _column(ds, by)
    t = ds.transactions
    p = t.filter(~t.is_refund)
    per = p.group_by("customer_id").aggregate(
        repeat=p.order_id.min() < p.order_id.max(),  # two or more orders
        several=p[col].min() < p[col].max(),  # two or more distinct products
    )
    agg = per.aggregate(
        customers=per.count(),
        repeat=per.repeat.cast("int64").sum(),
        multi=(per.repeat & per.several).cast("int64").sum(),
    )
    r = ds.execute(agg).to_pylist()[0]
    repeat, multi = int(r["repeat"] or 0), int(r["multi"] or 0)
    row = {"customers": int(r["customers"]), "repeat_customers": repeat,
           f"multi_{by}_customers": multi, f"multi_{by}_rate": percent(multi, repeat)}  # fmt: skip
    definition = (
        f"Multi-{by} buyers = repeat customers (2 or more orders) who bought more than one "
        f"distinct {by} / repeat customers x 100; refunds excluded; over the whole file."
    )
    return MetricResult(f"multi-{by}", definition, {"by": by, **ds.describe()}, [row])


def basket_affinity(
    ds: Dataset, *, by: Level = "product", min_support: float = 1.0, top: int = 50
) -> MetricResult:
    """Pairs bought together, by support (then lift), with confidence both ways."""
    col = _column(ds, by)
    t = ds.transactions
    p = t.filter(~t.is_refund & t[col].notnull())
    has_orders = "order_id" in ds.loaded.present
    # A basket is one customer's order (order ids are per customer, as in every metric),
    # or without order ids one customer's local day.
    within = p.order_id if has_orders else p.day.cast("string")
    keyed = p.select(customer=p.customer_id, basket=within, item=p[col])
    baskets = keyed.group_by(["customer", "basket"]).aggregate(
        lo=keyed.item.min(), hi=keyed.item.max()
    )
    counts = baskets.aggregate(n=baskets.count(), mixed=(baskets.lo < baskets.hi).sum())
    count_row = ds.execute(counts).to_pylist()[0]
    total, mixed = int(count_row["n"] or 0), int(count_row["mixed"] or 0)
    if mixed == 0:  # no basket holds two products: no pair (and no second pass)
        return _affinity_result(ds, by, min_support, top, total, has_orders, [])
    several = baskets.filter(baskets.lo < baskets.hi).select("customer", "basket")
    items = keyed.semi_join(several, ["customer", "basket"]).distinct()
    alone = baskets.filter(baskets.lo == baskets.hi)
    per_item = (
        items.group_by("item")
        .aggregate(n=items.count())
        .union(alone.group_by(item=alone.lo).aggregate(n=alone.count()))
    )
    single = per_item.group_by("item").aggregate(n=per_item.n.sum())
    a, b = items.view(), items.view()
    same = (a.customer == b.customer) & (a.basket == b.basket) & (a.item < b.item)
    pairs = a.join(b, same).select(left=a.item, right=b.item)
    counted = pairs.group_by(["left", "right"]).aggregate(both=pairs.count())
    # support >= min_support %, compared exactly (28 % of 25 baskets is 7 baskets)
    counted = counted.filter(counted.both >= max(at_least_percent(min_support, total), 1))
    sa, sb = single.view(), single.view()
    joined = counted.join(sa, counted.left == sa.item).join(sb, counted.right == sb.item)
    # The rows' order, in the engine so that --top keeps the first pairs of it: most
    # baskets with both, then highest lift -- for equal counts, the smallest
    # baskets-with-A x baskets-with-B (exact integers) -- then by the two names.
    picked = joined.select(
        counted.left, counted.right, counted.both, n_left=sa.n, n_right=sb.n,
        spread=sa.n.cast("int64") * sb.n.cast("int64"),
    )  # fmt: skip
    expr = picked.order_by([ibis.desc("both"), "spread", "left", "right"]).limit(top)
    rows = [_pair(r, total) for r in ds.execute(expr).to_pylist()]
    return _affinity_result(ds, by, min_support, top, total, has_orders, rows)


def _affinity_result(
    ds: Dataset,
    by: Level,
    min_support: float,
    top: int,
    total: int,
    has_orders: bool,
    rows: list[dict[str, Any]],
) -> MetricResult:
    rows.sort(key=_rank)
    basket_rule = "customer and order_id" if has_orders else "customer and local day"
    definition = (
        f"Pairs of {_plural(by)} bought in the same basket (basket = {basket_rule}); support = "
        "baskets with both / all baskets x 100; confidence A->B = baskets with both / "
        "baskets with A x 100; lift = support(A,B) / (support(A) x support(B)); pairs with "
        f"support >= {min_support:g} %; the first {top} by baskets with both, then lift "
        "(then by name); refunds excluded."
    )
    params = {"by": by, "min_support": min_support, "top": top, "baskets": total,
              **ds.describe()}  # fmt: skip
    columns = ("a", "b", "baskets_with_both", "baskets_with_a", "baskets_with_b", "support",
               "confidence_a_to_b", "confidence_b_to_a", "lift")  # fmt: skip
    return MetricResult("basket", definition, params, rows, columns=columns)


def _plural(level: str) -> str:
    """The level's name in the plural: "products", "categories"."""
    return level[:-1] + "ies" if level.endswith("y") else level + "s"


def _rank(row: dict[str, Any]) -> tuple[int, int, str, str]:
    """The rows' order: baskets with both (most first), lift (highest first: for equal
    counts, the smallest product of the two products' baskets), the two names."""
    spread = row["baskets_with_a"] * row["baskets_with_b"]
    return (-row["baskets_with_both"], spread, row["a"], row["b"])


def _pair(r: dict[str, Any], total: int) -> dict[str, Any]:
    both, na, nb = int(r["both"]), int(r["n_left"]), int(r["n_right"])
    lift = (both * total) / (na * nb) if na and nb else None
    return {
        "a": r["left"], "b": r["right"], "baskets_with_both": both,
        "baskets_with_a": na, "baskets_with_b": nb,
        "support": percent(both, total),
        "confidence_a_to_b": percent(both, na), "confidence_b_to_a": percent(both, nb),
        "lift": None if lift is None else round(lift, 4),
    }  # fmt: skip
