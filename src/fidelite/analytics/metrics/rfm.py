"""RFM scores and named segments.

Per customer, at the observation end day (the last day in the data unless given):
recency = days since the last purchase, frequency = distinct orders, monetary = net
revenue (purchases minus refunds), T = days since the first purchase.

Scores 1..q (quintiles by default) from ranks: score = floor(rank x q / n) + 1, where
rank is the 0-based *minimum* rank of the customer's value (ties share a score, so the
result does not depend on row order). Higher is better: recent, frequent, high spend.
Segments follow the usual R x F grid, first matching rule wins (see :data:`SEGMENTS`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.result import MetricResult, money

# (segment, R range, F range), inclusive, on the 1-5 scale; first match wins.
SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("champions", (4, 5), (4, 5)),
    ("loyal", (3, 3), (4, 5)),
    ("cannot lose them", (1, 2), (5, 5)),
    ("at risk", (1, 2), (3, 4)),
    ("potential loyalists", (4, 5), (2, 3)),
    ("new customers", (5, 5), (1, 1)),
    ("promising", (4, 4), (1, 1)),
    ("need attention", (3, 3), (3, 3)),
    ("about to sleep", (3, 3), (1, 2)),
    ("hibernating", (2, 2), (1, 2)),
    ("lost", (1, 1), (1, 2)),
)


def customer_values(ds: Dataset, end: date | None = None) -> ibis.Table:
    """Per customer: recency, frequency, monetary, T (days) at ``end``."""
    t = ds.transactions
    last = end or ds.backend.execute(t.day.max())
    end_day = ibis.date(last)
    p = t.filter(t.day <= end_day)
    g = p.group_by("customer_id").aggregate(
        first=p.day.min(where=~p.is_refund),
        last=p.day.max(where=~p.is_refund),
        frequency=p.order_id.nunique(where=~p.is_refund),
        monetary=p.amount.sum(),
    )
    g = g.filter(g.first.notnull())
    return g.select(
        "customer_id",
        recency=end_day.delta(g.last, unit="day"),
        frequency=g.frequency.cast("int64"),
        monetary=g.monetary,
        T=end_day.delta(g.first, unit="day"),
    )


def _score(values: ibis.Table, col: str, q: int, n: ibis.Value, descending: bool) -> ibis.Value:
    key = ibis.desc(values[col]) if descending else values[col]
    rank = ibis.rank().over(order_by=key)
    return (rank * q / n).floor().cast("int64") + 1


def scored(ds: Dataset, quantiles: int = 5, end: date | None = None) -> ibis.Table:
    """RFM values with r/f/m scores and segment (Ibis table)."""
    v = customer_values(ds, end)
    n = v.count().as_scalar()
    s = v.mutate(
        r_score=_score(v, "recency", quantiles, n, descending=True),
        f_score=_score(v, "frequency", quantiles, n, descending=False),
        m_score=_score(v, "monetary", quantiles, n, descending=False),
    )
    # Segment rules are on a 1-5 scale; other q are rescaled onto it.
    r5 = ((s.r_score - 1) * 5 // quantiles) + 1
    f5 = ((s.f_score - 1) * 5 // quantiles) + 1
    cases = [
        ((r5 >= r[0]) & (r5 <= r[1]) & (f5 >= f[0]) & (f5 <= f[1]), name) for name, r, f in SEGMENTS
    ]
    return s.mutate(segment=ibis.cases(*cases, else_="others"))


def rfm(ds: Dataset, quantiles: int = 5, end: date | None = None) -> MetricResult:
    """One row per customer: frequency, recency, T, monetary, R/F/M scores, segment."""
    if quantiles < 2:
        raise ValueError("quantiles must be at least 2")
    table = ds.execute(scored(ds, quantiles, end).order_by("customer_id"))
    rows: list[dict[str, Any]] = [
        {**r, "monetary": money(r["monetary"])} for r in table.to_pylist()
    ]
    definition = (
        "Per customer at the observation end day: recency = days since last purchase, "
        "frequency = distinct orders, monetary = net revenue (refunds subtracted), T = days "
        f"since first purchase. Scores 1-{quantiles}: floor(min-rank x {quantiles} / customers) "
        "+ 1, higher = more recent / more frequent / higher spend; ties share a score. "
        "Segments from the R x F grid: "
        + "; ".join(f"{n} (R {r[0]}-{r[1]}, F {f[0]}-{f[1]})" for n, r, f in SEGMENTS)
        + "; others otherwise."
    )
    params = {"quantiles": quantiles, "observation_end": end, **ds.describe()}
    return MetricResult("rfm", definition, params, rows)


def segment_sizes(ds: Dataset, quantiles: int = 5) -> list[dict[str, Any]]:
    """Customers and revenue per segment (for the report)."""
    s = scored(ds, quantiles)
    agg = s.group_by("segment").aggregate(customers=s.count(), revenue=s.monetary.sum())
    rows = ds.execute(agg).to_pylist()
    return sorted(
        ({**r, "revenue": money(r["revenue"])} for r in rows),
        key=lambda r: (-r["customers"], r["segment"]),
    )
