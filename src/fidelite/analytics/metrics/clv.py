"""The simple customer lifetime value formula from the spec.

CLV = average order value x average purchases per customer per year x average
retention (customer lifespan) in years, where

* average order value = net revenue / orders (refunds subtracted, orders = distinct
  (customer, order id) pairs among purchases: order ids are per customer, as in RFM);
* purchases per year = orders / customers / observed years, the observed span being
  first to last day in the data, inclusive, in years of 365.25 days;
* lifespan in years = given by the user, or else 1 / (12 x monthly churn): the mean
  lifetime, 1 / churn months, of a customer lost with the same probability every month,
  in years. Monthly churn is the churn metric's (:mod:`retention`: active = a purchase
  in the calendar month, refunds excluded; lost = active in the previous month and not
  in this one), pooled over the complete months of the data: customers lost / customers
  at the start, summed over every month that the data cover from its first to its last
  day and whose previous month they cover too. A month cut by the data's first or last
  day would count customers who had no time to buy again as lost.

When churn cannot be measured -- fewer than two complete months, no customer at the
start of a measured month, or no customer lost (churn 0: no finite lifespan) -- the
lifespan and the CLV are null (``None``) and ``summary.note`` asks for a lifespan
(``--lifespan-years``). ``lifespan_source`` says where the lifespan came from: ``given``
or ``from churn``.

Without any purchase (every row of the file is a refund) there is no order to average:
the figures are null, ``customers`` and ``orders`` are 0 and ``summary.note`` says why,
so a report built on such a file still renders.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.result import MetricResult, money, percent
from fidelite.analytics.metrics.retention import PooledChurn, pooled_churn

YEAR_DAYS = 365.25
MONTHS_PER_YEAR = 12

DEFINITION = (
    "CLV = average order value x purchases per customer per year x lifespan in years. "
    "AOV = net revenue / orders (orders = distinct customer and order_id among purchases); "
    "purchases per customer per year = orders / customers / observed years (first to last "
    "day of the data, inclusive, 365.25-day years); lifespan = {lifespan}. Monthly churn "
    "= customers lost / customers at the start, summed over the calendar months of the "
    "data that are complete and follow a complete month (a complete month: the data cover "
    "its first to its last day); active = at least one purchase in the month (refunds "
    "excluded), local days in time zone {timezone}; lost = active in the previous month, "
    "not in this one. Lifespan and CLV are null when churn cannot be measured (fewer than "
    "two complete months, or no customer lost); null without any purchase."
)
_FROM_CHURN = (
    "1 / (12 x monthly churn) years, the mean lifetime of a customer lost with that "
    "probability each month"
)


def simple_clv(ds: Dataset, lifespan_years: float | None = None) -> MetricResult:
    """One row: the inputs of the formula and the resulting CLV (null when undefined)."""
    t = ds.transactions
    p = t.filter(~t.is_refund)
    totals = ds.execute(
        t.aggregate(revenue=t.amount.sum(), first=t.day.min(), last=t.day.max())
    ).to_pylist()[0]
    per_customer = p.group_by("customer_id").aggregate(n=p.order_id.nunique())
    counts = ds.execute(
        per_customer.aggregate(customers=per_customer.count(), orders=per_customer.n.sum())
    ).to_pylist()[0]
    orders, customers = int(counts["orders"] or 0), int(counts["customers"] or 0)
    first: date = totals["first"]
    last: date = totals["last"]
    if ds.segment is not None:  # a segment is observed over the whole file's span
        first, last = ds.first_day(), ds.last_day()
    years = ((last - first).days + 1) / YEAR_DAYS
    given = lifespan_years is not None
    lifespan_rule = "--lifespan-years (given)" if given else _FROM_CHURN
    definition = DEFINITION.format(lifespan=lifespan_rule, timezone=ds.loaded.timezone)
    params = {
        "lifespan_years": lifespan_years,
        "observation_start": first.isoformat(),
        "observation_end": last.isoformat(),
        **ds.describe(),
    }
    churn = pooled_churn(ds, first, last, "month")
    lifespan = lifespan_years if given else _lifespan(churn)
    if not orders:
        row = _row(None, None, lifespan, given, churn, 0, 0, years)
        note = "no purchases in the data (every row is a refund): CLV is undefined"
        return MetricResult("clv", definition, params, [row], {"note": note})
    aov = float(totals["revenue"]) / orders
    per_year = orders / customers / years
    row = _row(aov, per_year, lifespan, given, churn, customers, orders, years)
    summary = {} if lifespan is not None else {"note": _why_no_lifespan(churn, first, last)}
    return MetricResult("clv", definition, params, [row], summary)


def _lifespan(churn: PooledChurn) -> float | None:
    """Years from monthly churn; ``None`` when churn is unmeasured or 0."""
    rate = churn.rate
    return 1.0 / (MONTHS_PER_YEAR * rate) if rate else None


def _why_no_lifespan(churn: PooledChurn, first: date, last: date) -> str:
    ask = "give the expected lifespan with --lifespan-years"
    if churn.complete_periods < 2:
        months = "no complete month" if not churn.complete_periods else "one complete month"
        return (
            f"the lifespan comes from monthly churn, which needs two consecutive complete "
            f"calendar months, and the data ({first} to {last}) hold {months}: CLV is "
            f"undefined; {ask}"
        )
    if not churn.customers_start:
        return (
            "no customer bought in a complete month followed by another complete month, so "
            f"monthly churn cannot be measured: CLV is undefined; {ask}"
        )
    return (
        f"no customer was lost over {churn.measured} complete months (monthly churn 0 %), "
        f"so the lifespan has no finite estimate: CLV is undefined; {ask}"
    )


def _row(
    aov: float | None,
    per_year: float | None,
    lifespan: float | None,
    given: bool,
    churn: PooledChurn,
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
        "lifespan_source": "given" if given else "from churn",
        "monthly_churn_rate": percent(churn.lost, churn.customers_start),
        "churn_months": churn.measured,
        "clv": money(value),
        "customers": customers,
        "orders": orders,
        "observed_years": round(years, 4),
    }
