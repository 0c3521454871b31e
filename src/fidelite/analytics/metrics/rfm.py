"""RFM scores and named segments.

Per customer, at the observation end day (the last day in the data unless given):
recency = days since the last purchase, frequency = distinct orders, monetary = net
revenue (purchases minus refunds), T = days since the first purchase.

Scores 1..q (quintiles by default), higher is better (recent, frequent, high spend).
Line the n customers up from worst to best value; a tie group has B customers worse
than it and E equal (itself included). Its score is, first matching rule:

1. q when no customer is better (the best value -- also when everyone is equal, and
   for a single customer): the top score is always given out;
2. 1 when no customer is worse (the worst value): the bottom score is always given out;
3. otherwise the q-quantile holding the middle of the group, floor(q x (B + E/2) / n)
   + 1, i.e. the quantile of the group's average rank (the statistical convention for
   ties, as in Spearman's rank correlation).

Why: equal values must get equal scores (the result cannot depend on row order), and a
big tie group must not all fall to its lowest or highest position -- the three
customers who bought on the last day are the most recent (R = q), and the 70 % of
customers with one order are the least frequent (F = 1), not the middle of the scale.
With distinct values and n a multiple of q the quantiles are exactly equal in size.

Segments follow the usual R x F grid on the 1-5 scale, first matching rule wins (see
:data:`SEGMENTS`). For q != 5 a score s is placed on that scale at 1 + 4 (s - 1) /
(q - 1), rounded half up, so the lowest, middle and highest scores stay lowest, middle
and highest (q = 3: 1, 3, 5; q = 10: 1, 1, 2, 2, 3, 3, 4, 4, 5, 5).
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
    end_day = ibis.date(end or ds.last_day())
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


def _score(
    values: ibis.Table, col: str, q: int, n: ibis.Value, higher_is_better: bool
) -> ibis.Value:
    """The 1..q score of ``col`` by the rules of the module docstring.

    ``worse`` / ``better`` count the customers with a strictly worse / better value
    (0-based min-ranks in each direction); 2B + E = B + (n - better).
    """
    best_first = ibis.desc(values[col]) if higher_is_better else values[col]
    worst_first = values[col] if higher_is_better else ibis.desc(values[col])
    better = ibis.rank().over(order_by=best_first)
    worse = ibis.rank().over(order_by=worst_first)
    middle = (q * (worse + n - better) / (2 * n)).floor().cast("int64") + 1
    return ibis.cases((better == 0, q), (worse == 0, 1), else_=middle)


def on_five_scale(score: int, q: int) -> int:
    """Where score ``score`` of 1..q sits on the 1-5 scale of the segment grid."""
    if q == 5:
        return score
    return 1 + (8 * (score - 1) + q - 1) // (2 * (q - 1))  # round(4 (s-1)/(q-1)), half up


def _within(col: ibis.Value, q: int, lo: int, hi: int) -> ibis.Value:
    """``col`` (a 1..q score) lands in [lo, hi] on the 1-5 scale."""
    scores = [s for s in range(1, q + 1) if lo <= on_five_scale(s, q) <= hi]
    if not scores:
        return ibis.literal(False)
    return col.between(min(scores), max(scores))  # on_five_scale is monotone


def scored(ds: Dataset, quantiles: int = 5, end: date | None = None) -> ibis.Table:
    """RFM values with r/f/m scores and segment (Ibis table)."""
    v = customer_values(ds, end)
    n = v.count().as_scalar()
    s = v.mutate(
        r_score=_score(v, "recency", quantiles, n, higher_is_better=False),
        f_score=_score(v, "frequency", quantiles, n, higher_is_better=True),
        m_score=_score(v, "monetary", quantiles, n, higher_is_better=True),
    )
    cases = [
        (_within(s.r_score, quantiles, *r) & _within(s.f_score, quantiles, *f), name)
        for name, r, f in SEGMENTS
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
    end_day = end or ds.last_day()
    definition = _definition(quantiles, end_day, given=end is not None)
    params = {"quantiles": quantiles, "observation_end": end_day.isoformat(), **ds.describe()}
    return MetricResult("rfm", definition, params, rows)


def _definition(q: int, end: date, *, given: bool) -> str:
    scale = ""
    if q != 5:
        placed = ", ".join(f"{s}->{on_five_scale(s, q)}" for s in range(1, q + 1))
        scale = (
            f" Scores 1-{q} are placed on the 1-5 grid at 1 + 4 (s - 1) / {q - 1}, "
            f"rounded half up ({placed})."
        )
    return (
        f"Per customer at the observation end day, {end} "
        f"({'given' if given else 'the last day in the data'}): recency = days since last "
        "purchase, "
        "frequency = distinct orders, monetary = net revenue (refunds subtracted), T = days "
        f"since first purchase. Scores 1-{q}, higher = more recent / more frequent / higher "
        f"spend; equal values get equal scores: the best value scores {q} (also when all "
        "customers are equal), the worst scores 1, any other the quantile holding the "
        f"middle of its tie group: floor({q} x (customers worse + equal / 2) / customers) + 1. "
        "Segments from the R x F grid on the 1-5 scale: "
        + "; ".join(f"{n} (R {r[0]}-{r[1]}, F {f[0]}-{f[1]})" for n, r, f in SEGMENTS)
        + "; others otherwise."
        + scale
    )


def segment_sizes(ds: Dataset, quantiles: int = 5) -> list[dict[str, Any]]:
    """Customers and revenue per segment (for the report)."""
    s = scored(ds, quantiles)
    agg = s.group_by("segment").aggregate(customers=s.count(), revenue=s.monetary.sum())
    rows = ds.execute(agg).to_pylist()
    return sorted(
        ({**r, "revenue": money(r["revenue"])} for r in rows),
        key=lambda r: (-r["customers"], r["segment"]),
    )
