"""Pareto analysis: the share of net revenue from the top X % of customers, and who.

Only customers who brought revenue are ranked: net revenue (purchases minus refunds)
above 0 once rounded to cents, highest first, ties by customer id. The top group is the
first ceil(X % x ranked customers); shares are of the ranked customers' total revenue.
Customers whose refunds cancel or exceed their purchases (net revenue <= 0) are left
out of the ranking and reported apart (how many, and their net revenue), so every
share is within 0-100 and the cumulative share reaches 100 at the last ranked customer.

Why: a refund larger than a customer's purchases in the file (the purchase predates
it) made the total smaller than the top customers' revenue, and shares went above
100 %; "who brings the revenue" is a question about the customers who brought some.

Customers are those with at least one purchase, as in RFM and CLV: a customer with
refunds only (of purchases older than the file) is no customer of the file, and is
counted apart (``refund_only_customers``, with those refunds as
``refund_only_revenue``). So revenue + excluded_revenue + refund_only_revenue is the
file's net revenue.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.result import MetricResult, at_least_percent, money, percent
from fidelite.analytics.summary import MONEY

# Net revenue counts as above 0 from half a cent (it is above 0 once rounded to cents).
HALF_CENT = Decimal("0.005")


def net_revenue(ds: Dataset) -> ibis.Table:
    """Per customer net revenue (every customer with a row, refunds subtracted) and
    whether they made a purchase (``bought``).

    Summed exactly as a decimal: a double sum made 0.1 + 0.2 more than a single 0.3
    (and 0.3 + 0.2 + 0.1 something else than 0.1 + 0.2 + 0.3), so the ranking and its
    ties by id depended on how the amounts were split and on the rows' order."""
    t = ds.transactions
    return t.group_by("customer_id").aggregate(
        revenue=t.amount.cast(MONEY).sum(), bought=(~t.is_refund).cast("int64").sum() > 0
    )


def ranked_revenue(ds: Dataset) -> ibis.Table:
    """Customers with net revenue above 0, ranked (0-based ``rank``) highest first."""
    g = net_revenue(ds)
    g = g.filter(g.revenue >= _half_cent())
    w = ibis.window(order_by=[ibis.desc(g.revenue), g.customer_id])
    return g.mutate(rank=ibis.row_number().over(w))


def pareto(ds: Dataset, top_percent: float = 20.0, limit: int | None = 100) -> MetricResult:
    """Revenue share of the top customers; rows are the top customers (up to ``limit``)."""
    if not 0 < top_percent <= 100:
        raise ValueError("top percent must be in (0, 100]")
    g = net_revenue(ds)
    positive = g.revenue >= _half_cent()  # only a customer who bought can have revenue
    unranked = g.bought & ~positive
    totals = ds.execute(
        g.aggregate(
            customers=g.bought.cast("int64").sum(),
            ranked=positive.cast("int64").sum(),
            revenue=g.revenue.sum(where=positive),
            excluded_revenue=g.revenue.sum(where=unranked),
            refund_only=(~g.bought).cast("int64").sum(),
            refund_only_revenue=g.revenue.sum(where=~g.bought),
        )
    ).to_pylist()[0]
    n, ranked = int(totals["customers"] or 0), int(totals["ranked"] or 0)
    total = _exact(totals["revenue"])
    k = at_least_percent(top_percent, ranked)  # exact: 64.4 % of 250 is 161
    r = ranked_revenue(ds)
    top = r.filter(r["rank"] < k)
    top_revenue = _exact(ds.execute(top.aggregate(s=top.revenue.sum())).to_pylist()[0]["s"])
    shown = top.order_by("rank")
    if limit is not None:
        shown = shown.limit(limit)
    rows: list[dict[str, Any]] = []
    running = Decimal(0)
    for row in ds.execute(shown).to_pylist():
        running += row["revenue"]
        rows.append(
            {
                "rank": int(row["rank"]) + 1,
                "customer_id": row["customer_id"],
                "revenue": money(row["revenue"]),
                "revenue_share": percent(float(row["revenue"]), float(total)),
                "cumulative_share": percent(float(running), float(total)),
            }
        )
    summary = {
        "customers": n,
        "ranked_customers": ranked,
        "customers_without_revenue": n - ranked,
        "excluded_revenue": money(_exact(totals["excluded_revenue"])),
        "refund_only_customers": int(totals["refund_only"] or 0),
        "refund_only_revenue": money(_exact(totals["refund_only_revenue"])),
        "top_customers": k,
        "revenue": money(total),
        "top_revenue": money(top_revenue),
        "top_revenue_share": percent(float(top_revenue), float(total)),
    }
    params = {"top_percent": top_percent, "limit": limit, **ds.describe()}
    columns = ("rank", "customer_id", "revenue", "revenue_share", "cumulative_share")
    return MetricResult("pareto", _definition(top_percent), params, rows, summary, columns)


def _half_cent() -> ibis.Value:
    return ibis.literal(HALF_CENT, type=MONEY)


def _exact(value: Decimal | None) -> Decimal:
    """An engine's decimal sum (``None`` when nothing was summed) as a Decimal."""
    return Decimal(0) if value is None else Decimal(value)


def _definition(top_percent: float) -> str:
    return (
        f"Share of revenue from the top {top_percent:g} % of customers = net revenue "
        f"(refunds subtracted) of the first ceil({top_percent:g} % x ranked customers) "
        "customers / total net revenue of the ranked customers x 100. Ranked customers: "
        "net revenue above 0 (rounded to cents), highest first, ties by customer id; "
        "customers whose refunds cancel or exceed their purchases (net revenue <= 0) are "
        "not ranked and are counted apart (customers_without_revenue, excluded_revenue). "
        "Customers = those with at least one purchase; customers with refunds only are "
        "counted apart (refund_only_customers, refund_only_revenue). "
        "Rows: the top customers, best first."
    )


def curve(ds: Dataset, points: int = 20) -> list[dict[str, float | None]]:
    """Cumulative revenue share at each 100/points % of ranked customers (for the chart)."""
    r = ranked_revenue(ds)
    n = int(ds.execute(r.aggregate(c=r.count())).to_pylist()[0]["c"])
    bucket = (r["rank"] * points // max(n, 1)).name("bucket")
    agg = r.group_by(bucket).aggregate(revenue=r.revenue.sum())
    by_bucket = {int(x["bucket"]): _exact(x["revenue"]) for x in ds.execute(agg).to_pylist()}
    total = float(sum(by_bucket.values(), Decimal(0)))
    out: list[dict[str, float | None]] = [{"customers_share": 0.0, "revenue_share": 0.0}]
    running = Decimal(0)
    for b in range(points):
        running += by_bucket.get(b, Decimal(0))
        out.append(
            {
                "customers_share": round(100 * (b + 1) / points, 4),
                "revenue_share": percent(float(running), total),
            }
        )
    return out
