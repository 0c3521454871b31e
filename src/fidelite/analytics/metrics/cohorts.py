"""Cohort retention matrices: N-period, unbounded and bracket retention.

Cohort: the period (day, week or month) of a customer's first purchase. Age of an
activity: periods between the cohort period and the period of the purchase (0 = the
cohort period itself). For cohort c and age N:

* N-period retention = customers of c who purchased in period c + N / size of c;
* unbounded retention = customers of c who purchased in period c + N or later;
* bracket retention = customers of c who purchased within a bracket of days after their
  first purchase day (e.g. 1-7, 8-30, 31-90), whatever the cohort unit. Brackets start
  at day 1 or later: day 0 is the first purchase itself, which every customer made.

Age 0 of the N-period matrix is the cohort period itself, 100 % by construction; it is
kept as the matrix's anchor, as cohort matrices show it.

Cells not yet observed are null, not zero: an age N when period c + N has not begun by
the last day of the data; a bracket A-B while some customer of the cohort has not yet
reached day A after their first purchase (the cohort's latest first purchase day + A is
after the last day of the data). Either way every customer counted in a shown cell has
reached its start; the newest shown cells can still be partial (a bracket or period
that ends after the data).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.period import Period, bounds, index_expr, index_of, label
from fidelite.analytics.metrics.result import MetricResult, percent

Kind = Literal["n-day", "unbounded", "bracket"]
DEFAULT_BRACKETS = ((1, 7), (8, 30), (31, 90))


def _customer_cohorts(ds: Dataset, period: Period) -> tuple[ibis.Table, ibis.Table]:
    t = ds.transactions
    p = t.filter(~t.is_refund)
    first = p.group_by("customer_id").aggregate(first_day=p.day.min())
    first = first.mutate(cohort=index_expr(first.first_day, period))
    j = p.join(first, "customer_id")
    act = j.select(
        j.customer_id,
        j.cohort,
        age=index_expr(j.day, period) - j.cohort,
        offset=j.day.delta(j.first_day, unit="day"),
    )
    return first, act


def cohorts(
    ds: Dataset,
    period: Period = "month",
    kind: Kind = "n-day",
    brackets: Sequence[tuple[int, int]] = DEFAULT_BRACKETS,
) -> MetricResult:
    """One row per cohort: size and the retention percentage for each age or bracket."""
    if period not in ("day", "week", "month"):
        raise ValueError("cohort period must be day, week or month")
    if any(lo < 1 for lo, _ in brackets):
        # day 0 is the first purchase itself: a bracket holding it is always 100 %
        raise ValueError("brackets count days after the first purchase, from day 1")
    if len(set(brackets)) < len(brackets):
        # one column per bracket: a bracket given twice would be one column, listed twice
        raise ValueError("a bracket is given twice")
    first, act = _customer_cohorts(ds, period)
    per_cohort = first.group_by("cohort").aggregate(n=first.count(), latest=first.first_day.max())
    facts = ds.execute(per_cohort).to_pylist()
    sizes = {int(r["cohort"]): int(r["n"]) for r in facts}
    latest: dict[int, date] = {int(r["cohort"]): r["latest"] for r in facts}
    last_day = ds.last_day()  # the whole file's, for a segment too
    last_idx = index_of(last_day, period)
    if kind == "bracket":
        counts = _bracket_counts(ds, act, brackets)
        cols = [f"days_{lo}_{hi}" for lo, hi in brackets]
    else:
        counts = _age_counts(ds, act, unbounded=kind == "unbounded")
        cols = [f"{period}_{n}" for n in range(last_idx - min(sizes, default=last_idx) + 1)]
    rows = []
    for c in sorted(sizes):
        start, _ = bounds(c, period)
        row: dict[str, Any] = {"cohort": label(c, period), "cohort_start": start, "size": sizes[c]}
        for i, col in enumerate(cols):
            if kind == "bracket":
                visible = (last_day - latest[c]).days >= brackets[i][0]
            else:
                visible = c + i <= last_idx
            row[col] = percent(counts.get((c, i), 0), sizes[c]) if visible else None
        rows.append(row)
    return MetricResult(
        "cohorts",
        _definition(kind, period, brackets, ds, last_day),
        {
            "period": period,
            "kind": kind,
            "brackets": [list(b) for b in brackets] if kind == "bracket" else None,
            "observation_end": last_day.isoformat(),
            **ds.describe(),
        },
        rows,
        columns=("cohort", "cohort_start", "size", *cols),
    )


def _age_counts(ds: Dataset, act: ibis.Table, *, unbounded: bool) -> dict[tuple[int, int], int]:
    if unbounded:
        last = act.group_by(["customer_id", "cohort"]).aggregate(age=act.age.max())
        agg = last.group_by(["cohort", "age"]).aggregate(n=last.count())
    else:
        d = act.select("customer_id", "cohort", "age").distinct()
        agg = d.group_by(["cohort", "age"]).aggregate(n=d.count())
    counts = {(int(r["cohort"]), int(r["age"])): int(r["n"]) for r in ds.execute(agg).to_pylist()}
    if not unbounded:
        return counts
    # active at age N or later = customers whose last active age is >= N
    out: dict[tuple[int, int], int] = {}
    for c in {c for c, _ in counts}:
        top = max(a for cc, a in counts if cc == c)
        running = 0
        for age in range(top, -1, -1):
            running += counts.get((c, age), 0)
            out[(c, age)] = running
    return out


def _bracket_counts(
    ds: Dataset, act: ibis.Table, brackets: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    flags = {f"b{i}": act.offset.between(lo, hi).any() for i, (lo, hi) in enumerate(brackets)}
    per = act.group_by(["customer_id", "cohort"]).aggregate(**flags)
    agg = per.group_by("cohort").aggregate(**{k: per[k].cast("int64").sum() for k in flags})
    out: dict[tuple[int, int], int] = {}
    for r in ds.execute(agg).to_pylist():
        for i in range(len(brackets)):
            out[(int(r["cohort"]), i)] = int(r[f"b{i}"] or 0)
    return out


def _definition(
    kind: str, period: str, brackets: Sequence[tuple[int, int]], ds: Dataset, end: date
) -> str:
    base = f"Cohort = the {period} of a customer's first purchase; values are % of the cohort. "
    if kind == "n-day":
        rule = (
            f"{period}_N = purchased in the Nth {period} after the cohort {period}; null when "
            f"that {period} begins after {end}, the last day in the data."
        )
    elif kind == "unbounded":
        rule = (
            f"{period}_N = purchased in the Nth {period} after the cohort {period} or later; "
            f"null when that {period} begins after {end}, the last day in the data."
        )
    else:
        spans = ", ".join(f"{lo}-{hi}" for lo, hi in brackets)
        rule = (
            f"days_A_B = purchased between A and B days after the first purchase ({spans}); "
            f"null until every customer of the cohort has reached day A by {end}, the last "
            "day in the data."
        )
    return base + rule + f" Refunds excluded; local days in time zone {ds.loaded.timezone}."
