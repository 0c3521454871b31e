"""The simple customer lifetime value formula from the spec.

CLV = average order value x average purchases per customer per year x average
retention (customer lifespan) in years, where

* average order value = net revenue / orders (refunds subtracted, orders = distinct
  (customer, order id) pairs among purchases: order ids are per customer, as in RFM);
* purchases per year = orders / customers / observed years, the observed span being
  first to last day in the data, inclusive, in years of 365.25 days;
* lifespan in years = given by the user, or else the mean over customers of
  (last purchase day - first purchase day + 1) / 365.25 -- a lower bound, since
  customers still active at the end of the data have not finished their lifetime.

Without any purchase (every row of the file is a refund) there is no order to average:
the figures are null (``None``), ``customers`` and ``orders`` are 0 and ``summary.note``
says why, so a report built on such a file still renders.
"""

from __future__ import annotations

from typing import Any

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.result import MetricResult, money

YEAR_DAYS = 365.25


def simple_clv(ds: Dataset, lifespan_years: float | None = None) -> MetricResult:
    """One row: the inputs of the formula and the resulting CLV (null without purchases)."""
    t = ds.transactions
    p = t.filter(~t.is_refund)
    totals = ds.execute(
        t.aggregate(
            revenue=t.amount.sum(),
            span=t.day.max().delta(t.day.min(), unit="day") + 1,
        )
    ).to_pylist()[0]
    per_customer = p.group_by("customer_id").aggregate(n=p.order_id.nunique())
    counts = ds.execute(
        per_customer.aggregate(customers=per_customer.count(), orders=per_customer.n.sum())
    ).to_pylist()[0]
    orders, customers = int(counts["orders"] or 0), int(counts["customers"] or 0)
    years = int(totals["span"]) / YEAR_DAYS
    definition = (
        "CLV = average order value x purchases per customer per year x lifespan in years; "
        "AOV = net revenue / orders (distinct customer and order_id); purchases per year = "
        "orders / customers / observed years (first to last day of the data, 365.25-day "
        "years); lifespan = given, or the mean of (last - first purchase day + 1) / 365.25 "
        "over customers (a lower bound); null without any purchase."
    )
    params = {"lifespan_years": lifespan_years, **ds.describe()}
    if not orders:
        row = _row(None, None, lifespan_years, lifespan_years, 0, 0, years)
        note = "no purchases in the data (every row is a refund): CLV is undefined"
        return MetricResult("clv", definition, params, [row], {"note": note})
    per = p.group_by("customer_id").aggregate(life=p.day.max().delta(p.day.min(), unit="day") + 1)
    mean_life_days = float(ds.execute(per.aggregate(m=per.life.mean())).to_pylist()[0]["m"])
    aov = float(totals["revenue"]) / orders
    per_year = orders / customers / years
    lifespan = lifespan_years if lifespan_years is not None else mean_life_days / YEAR_DAYS
    row = _row(aov, per_year, lifespan_years, lifespan, customers, orders, years)
    return MetricResult("clv", definition, params, [row])


def _row(
    aov: float | None,
    per_year: float | None,
    given: float | None,
    lifespan: float | None,
    customers: int,
    orders: int,
    years: float,
) -> dict[str, Any]:
    """The output row; the CLV is null when any factor of the formula is."""
    value = None
    if aov is not None and per_year is not None and lifespan is not None:
        value = aov * per_year * lifespan
    return {
        "average_order_value": money(aov),
        "purchases_per_year": None if per_year is None else round(per_year, 4),
        "lifespan_years": None if lifespan is None else round(lifespan, 4),
        "lifespan_source": "given" if given is not None else "observed mean",
        "clv": money(value),
        "customers": customers,
        "orders": orders,
        "observed_years": round(years, 4),
    }
