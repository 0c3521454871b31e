"""RFM scores and named segments.

Per customer, at the observation end day (the last day in the data unless given):
recency = days since the last purchase, frequency = distinct orders, monetary = net
revenue (purchases minus refunds, summed exactly as a decimal: 1.10 + 2.20 is the same
3.30 as one purchase of 3.30, whatever the rows' order), T = days since the first
purchase.

Scores 1..q (quintiles by default), higher is better (recent, frequent, high spend).
Line the n customers up from worst to best value; a tie group has B customers worse
than it. Its score is floor(q x B / n) + 1: the quantile of the group's lowest
(min) rank, so a tie group shares the lowest score its group reaches.

Why: equal values must get equal scores (the result cannot depend on row order), and a
value shared by everyone (or by a single customer) says nothing about who is better:
it scores 1, never the top. When every customer has one order, all have F = 1 -- the
one-order customers who bought on the last day are "new customers", not champions --
and the 70 % of customers with one order are the least frequent (F = 1) whatever the
others did. A top score goes to a tie group only when it is at most 1/q of the
customers (the last-day buyers get R = q when they are at most a fifth of them, for
quintiles). With distinct values and n a multiple of q the quantiles are exactly
equal in size.

A single customer therefore scores 1 on every dimension ("lost"): one customer has
nobody to be compared with, and RFM scores are comparisons.

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
from fidelite.analytics.summary import MONEY

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


RFM_COLUMNS = ("customer_id", "recency", "frequency", "monetary", "T", "r_score", "f_score",
               "m_score", "segment")  # fmt: skip


def customer_values(ds: Dataset, end: date | None = None) -> ibis.Table:
    """Per customer: recency, frequency, monetary, T (days) at ``end``."""
    t = ds.transactions
    end_day = ibis.date(end or ds.last_day())
    p = t.filter(t.day <= end_day)
    g = p.group_by("customer_id").aggregate(
        first=p.day.min(where=~p.is_refund),
        last=p.day.max(where=~p.is_refund),
        frequency=p.order_id.nunique(where=~p.is_refund),
        monetary=p.amount.cast(MONEY).sum(),  # exact: 1.10 + 2.20 is 3.30, in any order
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
    """The 1..q score of ``col`` by the rule of the module docstring.

    ``worse`` counts the customers with a strictly worse value (the 0-based min-rank
    from the worst), the same in every engine: floor(q x worse / n) + 1.
    """
    worst_first = values[col] if higher_is_better else ibis.desc(values[col])
    worse = ibis.rank().over(order_by=worst_first)
    return (q * worse / n).floor().cast("int64") + 1


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
    return MetricResult("rfm", definition, params, rows, columns=RFM_COLUMNS)


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
        f"spend: floor({q} x customers with a worse value / customers) + 1, so equal values "
        "get equal scores, the lowest their tie group reaches (a value every customer "
        "shares scores 1). "
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
