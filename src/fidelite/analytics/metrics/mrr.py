"""Recurring revenue: MRR movements, MRR churn, net revenue retention, negative churn.

A customer's MRR on a day = the sum of ``mrr`` over their subscriptions running that
day (``start <= day < end``). For period P (month by default; quarter or year):

* starting MRR = MRR on the last day before P; ending MRR = MRR on P's last day, so a
  movement dated D counts in the period containing D (a start on 1 March is March's new
  MRR; an end on 1 March, exclusive, is March's churn), as billing tools count it;
* per customer, with s = their starting and e = their ending MRR:
  new = e when s = 0 and they never had MRR above 0 on an earlier period boundary (a
  free trial, $0, is no MRR: converting from it is new);
  reactivation = e when s = 0 but they had MRR before;
  expansion = e - s when 0 < s < e; contraction = s - e when 0 < e < s;
  churned = s when e = 0;
* ending = starting + new + reactivation + expansion - contraction - churned (checked);
* revenue churn (MRR churn) = contraction + churned;
  gross MRR churn rate = (churned + contraction) / starting x 100;
  net MRR churn rate = (churned + contraction - expansion) / starting x 100 (below 0 is
  negative churn); net revenue retention = (starting - churned - contraction +
  expansion) / starting x 100; ``negative_churn`` = expansion > churned + contraction.

Movements are read on the periods' last days, so a subscription that starts and stops
between two of them never counts. Rates are null when starting MRR is 0.

MRR is summed exactly, as a decimal, on every engine: as doubles 19.99 + 9.99 is
29.979999999999997, so a customer whose two subscriptions became one of 29.98 showed
an expansion of 3.5e-15, a negative churn and a net MRR churn rate of -0.0 in a
period where nothing moved.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from fidelite.analytics.engine import BoundTable, EngineName, bind_table
from fidelite.analytics.metrics.period import Period, bounds, label
from fidelite.analytics.metrics.result import MetricResult, money, percent
from fidelite.analytics.subscriptions import LoadedSubscriptions
from fidelite.analytics.summary import MONEY

DEFINITION = (
    "Per {period}: starting MRR = MRR on the last day before the {period}, ending MRR = MRR "
    "on the last day of the {period} (MRR on a day = the mrr of subscriptions with start <= "
    "day < end), so a start, change or end dated D counts in the {period} containing D. "
    "Per customer with starting s and ending e: new = e if s = 0 and no earlier "
    "MRR above 0 (a $0 trial is no MRR), reactivation = e if s = 0 with earlier MRR above "
    "0, expansion = e - s if 0 < s < e, "
    "contraction = s - e if 0 < e < s, churned = s if e = 0. Revenue churn = churned + "
    "contraction; gross MRR churn rate = (churned + contraction) / starting x 100; net MRR "
    "churn rate = (churned + contraction - expansion) / starting x 100; net revenue "
    "retention = (starting - churned - contraction + expansion) / starting x 100; negative "
    "churn when expansion > churned + contraction."
)
_PERIODS: tuple[Period, ...] = ("month", "quarter", "year")


class Subscriptions:
    """Validated subscriptions bound to one engine."""

    def __init__(
        self,
        loaded: LoadedSubscriptions,
        engine: EngineName = "duckdb",
        span: tuple[date, date] | None = None,
    ) -> None:
        """``span``: the whole file's first start and last change, for subscriptions
        that are one segment's (:func:`fidelite.analytics.segments.by_table_segment`),
        so that every segment lists the same periods and their movements add up to the
        whole file's, period by period."""
        self.loaded = loaded
        self.bound: BoundTable = bind_table(loaded.connection, loaded.table, engine)
        self.engine = engine
        self.span = span


def mrr(subs: Subscriptions, period: Period = "month") -> MetricResult:
    """One row per period from the first subscription start to the last change."""
    if period not in _PERIODS:
        raise ValueError(f"MRR periods are month, quarter or year, not {period!r}")
    first, last = subs.span or span(subs)
    indices = _indices(first, last, period)
    # Boundary b is the last day before period b: period b starts at boundary b and
    # ends at boundary b + 1 (its own last day).
    days = [_first_day(i, period) - timedelta(days=1) for i in indices]
    boundaries = ibis.memtable(pa.table({"b": indices, "at": days}))
    movements = _movements(subs.bound.table, boundaries)
    per_idx = {int(r["b"]): r for r in subs.bound.execute(movements).to_pylist()}
    rows = [_row(i, period, per_idx.get(i)) for i in indices[:-1]]
    params = {"period": period, **subs.loaded.describe(), "engine": subs.engine}
    return MetricResult("mrr", DEFINITION.format(period=period), params, rows)


def span(subs: Subscriptions) -> tuple[date, date]:
    """The first start and the last change (start or end) of the subscriptions."""
    t = subs.bound.table
    expr = t.aggregate(
        first=t.start_day.min(), last_start=t.start_day.max(), last_end=t.end_day.max()
    )
    r = subs.bound.execute(expr).to_pylist()[0]
    last: date = max(d for d in (r["last_start"], r["last_end"]) if d is not None)
    first: date = r["first"]
    return first, last


def _indices(first: date, last: date, period: Period) -> list[int]:
    """Boundary indices from ``first``'s period to the one after ``last``'s: a change on
    day D shows on the last day of D's period (boundary: that of the next period)."""
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    start = (first.year * 12 + first.month - 1) // months
    end = (last.year * 12 + last.month - 1) // months + 1
    return list(range(start, end + 1))


def _first_day(idx: int, period: Period) -> date:
    """The first day of period ``idx``: of the last boundary's period too, the one after
    the last change, whose own last day (:func:`bounds`) a change in the last supported
    year, 9998, would put in year 10000."""
    month = idx * {"month": 1, "quarter": 3, "year": 12}[period]
    return date(month // 12, month % 12 + 1, 1)


def _movements(t: ibis.Table, boundaries: ibis.Table) -> ibis.Table:
    """Per boundary index b: the period b's starting/ending MRR and its movements."""
    running = t.cross_join(boundaries).filter(
        lambda r: (r.start_day <= r.at) & (r.end_day.isnull() | (r.end_day > r.at))
    )
    # exact: 19.99 + 9.99 is 29.98, the same as one subscription of 29.98
    snap = running.group_by(["customer_id", "b"]).aggregate(v=running.mrr.cast(MONEY).sum())
    paying = snap.filter(snap.v > 0)  # a $0 trial is no MRR: its end is not a reactivation
    first = paying.group_by("customer_id").aggregate(first_b=paying.b.min())
    zero = ibis.literal(Decimal(0), type=MONEY)
    cur = snap.select(customer_id=snap.customer_id, b=snap.b, s=snap.v, e=zero)
    nxt = snap.select(customer_id=snap.customer_id, b=snap.b - 1, s=zero, e=snap.v)
    stacked = cur.union(nxt)
    both = stacked.group_by(["customer_id", "b"]).aggregate(s=stacked.s.sum(), e=stacked.e.sum())
    j = both.join(first, "customer_id")
    grew = (j.s == 0) & (j.e > 0)
    return j.group_by("b").aggregate(
        starting=j.s.sum(),
        ending=j.e.sum(),
        new=ibis.ifelse(grew & (j.first_b == j.b + 1), j.e, zero).sum(),
        reactivation=ibis.ifelse(grew & (j.first_b < j.b + 1), j.e, zero).sum(),
        expansion=ibis.ifelse((j.s > 0) & (j.e > j.s), j.e - j.s, zero).sum(),
        contraction=ibis.ifelse((j.e > 0) & (j.e < j.s), j.s - j.e, zero).sum(),
        churned=ibis.ifelse((j.s > 0) & (j.e == 0), j.s, zero).sum(),
        customers_start=(j.s > 0).sum(),
        customers_end=(j.e > 0).sum(),
    )


def _row(idx: int, period: Period, r: dict[str, Any] | None) -> dict[str, Any]:
    start, end = bounds(idx, period)
    keys = ("starting", "new", "reactivation", "expansion", "contraction", "churned", "ending")
    v = {k: Decimal((r or {}).get(k) or 0) for k in keys}
    lost = v["churned"] + v["contraction"]
    base = v["starting"]
    return {
        "period": label(idx, period), "start": start.isoformat(), "end": end.isoformat(),
        "customers_start": int((r or {}).get("customers_start") or 0),
        "customers_end": int((r or {}).get("customers_end") or 0),
        **{f"{k}_mrr": money(v[k]) for k in keys},
        "revenue_churn": money(lost),
        "gross_mrr_churn_rate": _rate(lost, base),
        "net_mrr_churn_rate": _rate(lost - v["expansion"], base),
        "net_revenue_retention": _rate(base - lost + v["expansion"], base),
        "negative_churn": v["expansion"] > lost,
    }  # fmt: skip


def _rate(part: Decimal, whole: Decimal) -> float | None:
    """``part / whole x 100`` (:func:`percent`) of exact sums; never -0.0."""
    rate = percent(float(part), float(whole))
    return None if rate is None else rate + 0.0  # -0.0 + 0.0 is 0.0
