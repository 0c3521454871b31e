"""Customer retention and churn per period, and new vs returning customers.

Activity rule: a customer is *active* in a period when they made at least one purchase
(a non-refund row) in it, by local calendar day. For period P:

* S = customers active in P-1 (the customers at the start of P);
* E = customers active in P (the customers at the end of P);
* N = customers active in P but not in P-1: first-time buyers plus customers returning
  after a gap (reported separately as ``first_time`` and ``reactivated``);
* retained = E - N (active in both), lost = S - retained;
* retention rate = (E - N) / S x 100, churn rate = lost / S x 100 (they add up to 100).

Every period between the first and the last purchase is listed, empty ones included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.period import (
    Period,
    bounds,
    complete,
    index_expr,
    index_of,
    label,
)
from fidelite.analytics.metrics.result import MetricResult, percent

DEFINITION = (
    "Customer retention rate = (E - N) / S x 100 and churn rate = lost / S x 100 per {period}, "
    "where S = customers active in the previous {period}, E = customers active in this "
    "{period}, N = customers active in this {period} but not in the previous one (first-time "
    "buyers plus reactivated customers), lost = S - (E - N). Active = at least one purchase "
    "(refunds excluded) in the {period}, by local calendar day in time zone {timezone}."
)


def active_periods(ds: Dataset, period: Period) -> ibis.Table:
    """Distinct (customer_id, idx) pairs: the periods in which each customer bought."""
    t = ds.transactions
    p = t.filter(~t.is_refund)
    return p.select(p.customer_id, idx=index_expr(p.day, period)).distinct()


def _counts(ds: Dataset, period: Period) -> tuple[Counter[int], Counter[int], Counter[int]]:
    """Per period index: active customers, retained from the previous period, first-time
    buyers. One query (each customer's active periods in order, compared with the one
    before), computed once per dataset and period: retention, churn and new-vs-returning
    share it."""
    return ds.remember(("retention.counts", period), lambda: _count_periods(ds, period))


def _count_periods(ds: Dataset, period: Period) -> tuple[Counter[int], Counter[int], Counter[int]]:
    act = active_periods(ds, period)
    before = act.idx.lag().over(ibis.window(group_by=act.customer_id, order_by=act.idx))
    marked = act.mutate(before=before)
    per_period = marked.group_by("idx").aggregate(
        active=marked.count(),
        retained=marked.count(where=marked.before == marked.idx - 1),
        first_time=marked.count(where=marked.before.isnull()),
    )
    rows = ds.execute(per_period).to_pylist()
    active, retained, first_time = (
        Counter({int(r["idx"]): int(r[name]) for r in rows if r[name]})
        for name in ("active", "retained", "first_time")
    )
    return active, retained, first_time


def listed_periods(ds: Dataset, period: Period, own: Iterable[int]) -> range:
    """The periods a per-period metric lists: from the first period with a purchase in
    ``own`` (the indices the metric found), or, for a segment's dataset, in the whole
    file, so every segment lists the same periods and their counts add up to the whole
    file's (a period after a segment's last purchase still loses customers), to the
    period of the data's last day (any row, refunds included: :meth:`Dataset.last_day`).

    A period the data cover after the last purchase (only refunds in it) is listed, as
    an empty period is: its customers are lost there, as the simple CLV's pooled churn
    counts them. Nothing is listed without a purchase."""
    found = list(_counts(ds.root, period)[0]) if ds.whole is not None else list(own)
    if not found:
        return range(0)
    last = max(max(found), index_of(ds.last_day(), period))
    return range(min(found), last + 1)


RETENTION_COLUMNS = ("period", "start", "end", "customers_start", "new", "first_time",
                     "reactivated", "customers_end", "retained", "lost", "retention_rate",
                     "churn_rate")  # fmt: skip


def _period_rows(ds: Dataset, period: Period) -> list[dict[str, Any]]:
    active, retained, first_time = _counts(ds, period)
    rows: list[dict[str, Any]] = []
    for idx in listed_periods(ds, period, active):
        start, end = bounds(idx, period)
        s, e, kept = active[idx - 1], active[idx], retained[idx]
        new = e - kept
        rows.append(
            {
                "period": label(idx, period),
                "start": start,
                "end": end,
                "customers_start": s,
                "new": new,
                "first_time": first_time[idx],
                "reactivated": new - first_time[idx],
                "customers_end": e,
                "retained": kept,
                "lost": s - kept,
                "retention_rate": percent(e - new, s),
                "churn_rate": percent(s - kept, s),
            }
        )
    return rows


@dataclass(frozen=True)
class PooledChurn:
    """Churn over the complete periods of the data, pooled: the customers lost in every
    period measured / the customers at the starts of those periods.

    A period is measured when it and the one before are complete (the data cover every
    day of both), so a period cut by the data's first or last day, whose customers had
    less time to buy, never counts. ``rate`` is a fraction (not a percentage), ``None``
    when no customer was at the start of a measured period.
    """

    complete_periods: int
    measured: int
    customers_start: int
    lost: int

    @property
    def rate(self) -> float | None:
        return self.lost / self.customers_start if self.customers_start else None


def pooled_churn(ds: Dataset, first: date, last: date, period: Period = "month") -> PooledChurn:
    """Churn (this module's rule) pooled over the periods of ``first`` to ``last`` (the
    data's first and last days) that are complete and follow a complete period."""
    active, retained, _ = _counts(ds, period)
    periods = complete(first, last, period)
    measured = periods[1:]
    start = sum(active[i - 1] for i in measured)
    kept = sum(retained[i] for i in measured)
    return PooledChurn(len(periods), len(measured), start, start - kept)


def retention(ds: Dataset, period: Period = "month") -> MetricResult:
    """Retention and churn rate per period (one row per period)."""
    return MetricResult(
        metric="retention",
        definition=DEFINITION.format(period=period, timezone=ds.loaded.timezone),
        parameters={"period": period, **ds.describe()},
        rows=_period_rows(ds, period),
        columns=RETENTION_COLUMNS,
    )


def churn(ds: Dataset, period: Period = "month") -> MetricResult:
    """Same rows as :func:`retention`, named for the churn question."""
    result = retention(ds, period)
    return MetricResult("churn", result.definition, result.parameters, result.rows,
                        columns=result.columns)  # fmt: skip


def new_vs_returning(ds: Dataset, period: Period = "month") -> MetricResult:
    """Per period: active customers split into new (first purchase ever) and returning."""
    active, _, first_time = _counts(ds, period)
    rows: list[dict[str, Any]] = []
    for idx in listed_periods(ds, period, active):
        start, end = bounds(idx, period)
        new, total = first_time[idx], active[idx]
        rows.append(
            {
                "period": label(idx, period),
                "start": start,
                "end": end,
                "customers": total,
                "new": new,
                "returning": total - new,
                "new_share": percent(new, total),
                "returning_share": percent(total - new, total),
            }
        )
    definition = (
        f"Customers who purchased in the {period} (refunds excluded), split into new (their "
        f"first purchase ever is in this {period}) and returning (they had bought before). "
        f"Local calendar days in time zone {ds.loaded.timezone}."
    )
    columns = ("period", "start", "end", "customers", "new", "returning", "new_share",
               "returning_share")  # fmt: skip
    params = {"period": period, **ds.describe()}
    return MetricResult("new-vs-returning", definition, params, rows, columns=columns)
