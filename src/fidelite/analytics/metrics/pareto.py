"""Pareto analysis: the share of net revenue from the top X % of customers, and who.

Customers are ranked by net revenue (purchases minus refunds), highest first, ties by
customer id. The top group is the first ceil(X % x customers) of that ranking.
"""

from __future__ import annotations

import math
from typing import Any

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.result import MetricResult, money, percent


def ranked_revenue(ds: Dataset) -> ibis.Table:
    """Per customer net revenue, ranked (0-based ``rank``) highest first."""
    t = ds.transactions
    g = t.group_by("customer_id").aggregate(revenue=t.amount.sum())
    w = ibis.window(order_by=[ibis.desc(g.revenue), g.customer_id])
    return g.mutate(rank=ibis.row_number().over(w))


def pareto(ds: Dataset, top_percent: float = 20.0, limit: int | None = 100) -> MetricResult:
    """Revenue share of the top customers; rows are the top customers (up to ``limit``)."""
    if not 0 < top_percent <= 100:
        raise ValueError("top percent must be in (0, 100]")
    r = ranked_revenue(ds)
    totals = ds.execute(r.aggregate(customers=r.count(), revenue=r.revenue.sum())).to_pylist()[0]
    n, total = int(totals["customers"]), float(totals["revenue"] or 0.0)
    k = math.ceil(n * top_percent / 100)
    top = r.filter(r["rank"] < k)
    top_revenue = float(ds.execute(top.aggregate(s=top.revenue.sum())).to_pylist()[0]["s"] or 0)
    shown = top.order_by("rank")
    if limit is not None:
        shown = shown.limit(limit)
    rows: list[dict[str, Any]] = []
    running = 0.0
    for row in ds.execute(shown).to_pylist():
        running += row["revenue"]
        rows.append(
            {
                "rank": int(row["rank"]) + 1,
                "customer_id": row["customer_id"],
                "revenue": money(row["revenue"]),
                "revenue_share": percent(row["revenue"], total),
                "cumulative_share": percent(running, total),
            }
        )
    summary = {
        "customers": n,
        "top_customers": k,
        "revenue": money(total),
        "top_revenue": money(top_revenue),
        "top_revenue_share": percent(top_revenue, total),
    }
    definition = (
        f"Share of net revenue (refunds subtracted) from the top {top_percent:g} % of "
        f"customers = revenue of the first ceil({top_percent:g} % x customers) customers "
        "ranked by revenue (ties by customer id) / total revenue x 100. Rows: the top "
        "customers, best first."
    )
    params = {"top_percent": top_percent, "limit": limit, **ds.describe()}
    return MetricResult("pareto", definition, params, rows, summary)


def curve(ds: Dataset, points: int = 20) -> list[dict[str, float | None]]:
    """Cumulative revenue share at each 100/points % of customers (for the chart)."""
    r = ranked_revenue(ds)
    n = int(ds.execute(r.aggregate(c=r.count())).to_pylist()[0]["c"])
    bucket = (r["rank"] * points // max(n, 1)).name("bucket")
    agg = r.group_by(bucket).aggregate(revenue=r.revenue.sum())
    by_bucket = {int(x["bucket"]): float(x["revenue"]) for x in ds.execute(agg).to_pylist()}
    total = sum(by_bucket.values())
    out: list[dict[str, float | None]] = [{"customers_share": 0.0, "revenue_share": 0.0}]
    running = 0.0
    for b in range(points):
        running += by_bucket.get(b, 0.0)
        out.append(
            {
                "customers_share": round(100 * (b + 1) / points, 4),
                "revenue_share": percent(running, total),
            }
        )
    return out
