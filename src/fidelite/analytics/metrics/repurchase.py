"""Repurchase rate within D days, by monthly cohort of first purchase.

Cohort: the local calendar month of a customer's first order. A customer *repurchased
within D days* when they placed another order (a different order_id) whose local day is
at most D days after the first order's day (a second order on the same day counts).
Per product: the same, per customer and product, with "another order containing the
same product" and cohorts by the month of the first order of that product; it needs
the ``product_id`` column (an error names it when the input has none).

A cohort's D-day rate is ``complete`` only when the data covers D days after the last
day of the cohort month; otherwise its latest customers had less than D days to return.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.columns import require
from fidelite.analytics.metrics.period import bounds, index_expr, label
from fidelite.analytics.metrics.result import MetricResult, percent

DEFAULT_DAYS = (30, 60, 90, 180, 360)


def _second_order_gap(orders: ibis.Table, keys: list[str]) -> ibis.Table:
    """Per key: first order day and days until the second order (null if none)."""
    w = ibis.window(group_by=[orders[k] for k in keys], order_by=[orders.ts, orders.order_id])
    ranked = orders.mutate(rn=ibis.row_number().over(w))
    g = ranked.group_by(keys).aggregate(
        first_day=ranked.day.min(),
        second_day=ranked.day.min(where=ranked.rn == 1),
    )
    return g.select(*keys, "first_day", gap=g.second_day.delta(g.first_day, unit="day"))


def repurchase(
    ds: Dataset, days: Sequence[int] = DEFAULT_DAYS, *, per_product: bool = False
) -> MetricResult:
    """One row per first-purchase month cohort (and product with ``per_product``)."""
    windows = sorted({int(d) for d in days})
    if not windows or windows[0] < 0:
        raise ValueError("days must be a non-empty list of non-negative integers")
    t = ds.transactions
    p = t.filter(~t.is_refund)
    keys = ["customer_id", "product_id"] if per_product else ["customer_id"]
    if per_product:
        require(ds, "product_id", "repurchase per product")
        p = p.filter(p.product_id.notnull())
    orders = p.group_by([*keys, "order_id"]).aggregate(ts=p.ts.min(), day=p.day.min())
    gaps = _second_order_gap(orders, keys)
    group = ["cohort", "product_id"] if per_product else ["cohort"]
    gaps = gaps.mutate(cohort=index_expr(gaps.first_day, "month"))
    metrics = {f"within_{d}": (gaps.gap <= d).sum() for d in windows}
    agg = gaps.group_by(group).aggregate(customers=gaps.count(), **metrics)
    last_day = ds.last_day()
    rows = [_row(r, windows, last_day, per_product) for r in ds.execute(agg).to_pylist()]
    rows.sort(key=lambda r: (r["cohort"], r.get("product_id") or ""))
    what = "the same product" if per_product else "again"
    definition = (
        f"Repurchase rate within D days = customers of a monthly first-purchase cohort who "
        f"ordered {what} (another order) within D days of their first order / cohort size "
        f"x 100, D in {windows}. Days are local calendar days (time zone "
        f"{ds.loaded.timezone}); refunds excluded. complete_Dd is false while the data "
        f"ends (on {last_day}, the last day in the data) less than D days after the cohort "
        "month."
    )
    params = {"days": windows, "period": "month", "per_product": per_product,
              "observation_end": last_day.isoformat(), **ds.describe()}  # fmt: skip
    columns = ["cohort", *(["product_id"] if per_product else []), "cohort_start",
               "cohort_end", "customers"]  # fmt: skip
    for d in windows:
        columns += [f"repurchased_{d}d", f"repurchase_rate_{d}d", f"complete_{d}d"]
    return MetricResult("repurchase", definition, params, rows, columns=tuple(columns))


def _row(
    r: dict[str, Any], windows: list[int], last_day: date, per_product: bool
) -> dict[str, Any]:
    idx = int(r["cohort"])
    start, end = bounds(idx, "month")
    size = int(r["customers"])
    row: dict[str, Any] = {"cohort": label(idx, "month")}
    if per_product:
        row["product_id"] = r["product_id"]
    row |= {"cohort_start": start, "cohort_end": end, "customers": size}
    for d in windows:
        n = int(r[f"within_{d}"] or 0)
        row[f"repurchased_{d}d"] = n
        row[f"repurchase_rate_{d}d"] = percent(n, size)
        row[f"complete_{d}d"] = (last_day - end).days >= d  # no date past the last
    return row
