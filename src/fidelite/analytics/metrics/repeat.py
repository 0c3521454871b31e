"""Repeat purchase rate: customers with two or more orders / customers with one or more.

An order is a distinct ``order_id`` among purchase rows (refunds excluded); a file
without order ids has one order per row, so two purchases on the same day are two
orders. Computed per period (orders counted inside the period) or over the whole file.

Over the whole file there is always one row, as for the other whole-file metrics
(multi-product, CLV): without any purchase it counts 0 customers and its rate is null
(no denominator). Per period, the rows span the periods with purchases: none, no rows.
"""

from __future__ import annotations

from typing import Any

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.period import Period, bounds, index_expr, label
from fidelite.analytics.metrics.result import MetricResult, percent
from fidelite.analytics.metrics.retention import listed_periods


def repeat_rate(ds: Dataset, period: Period | None = None) -> MetricResult:
    """One row per period (or a single row for the whole file when ``period`` is None)."""
    t = ds.transactions
    p = t.filter(~t.is_refund)
    idx = index_expr(p.day, period) if period else 0
    orders = p.select(p.customer_id, p.order_id, idx=idx).distinct()
    per = orders.group_by(["idx", "customer_id"]).aggregate(n=orders.count())
    agg = per.group_by("idx").aggregate(customers=per.count(), repeat=(per.n >= 2).sum())
    counts = {int(r["idx"]): r for r in ds.execute(agg).to_pylist()}
    rows: list[dict[str, Any]] = []
    # the whole file: one row (index 0), zero customers when nobody bought
    span = range(1) if not period else listed_periods(ds, period, counts)
    for i in span:
        r = counts.get(i, {"customers": 0, "repeat": 0})
        row: dict[str, Any] = {}
        if period:
            start, end = bounds(i, period)
            row = {"period": label(i, period), "start": start, "end": end}
        customers, repeat = int(r["customers"]), int(r["repeat"] or 0)
        row |= {
            "customers": customers,
            "repeat_customers": repeat,
            "repeat_purchase_rate": percent(repeat, customers),
        }
        rows.append(row)
    scope = f"per {period}" if period else "over the whole file"
    definition = (
        f"Repeat purchase rate = customers with 2 or more orders / customers with at least "
        f"one order x 100, {scope}. Order = distinct order_id (one per row when the file has "
        f"no order ids); refunds excluded; time zone {ds.loaded.timezone}."
    )
    columns: tuple[str, ...] = ("customers", "repeat_customers", "repeat_purchase_rate")
    if period:
        columns = ("period", "start", "end", *columns)
    params = {"period": period, **ds.describe()}
    return MetricResult("repeat-rate", definition, params, rows, columns=columns)
