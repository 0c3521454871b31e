"""Calendar periods: day, week (ISO, Monday first), month, quarter, year.

A period is numbered by an integer index so that consecutive periods differ by one;
that makes "the previous period" a plain ``idx - 1`` on every engine. Indices are
computed by the engine from local calendar days and turned back into dates here.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import ibis

Period = Literal["day", "week", "month", "quarter", "year"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "year")
_EPOCH = date(1970, 1, 1)  # a Thursday: (days + 3) // 7 counts Monday-based weeks


def index_expr(day: ibis.Value, period: Period) -> ibis.Value:
    """Integer index of the period containing ``day`` (an Ibis date expression)."""
    if period == "day":
        return day.delta(ibis.date(_EPOCH), unit="day")
    if period == "week":
        return (day.delta(ibis.date(_EPOCH), unit="day") + 3) // 7
    if period == "month":
        return day.year() * 12 + day.month() - 1
    if period == "quarter":
        return day.year() * 4 + (day.month() - 1) // 3
    if period == "year":
        return day.year()
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")


def index_of(day: date, period: Period) -> int:
    """Index of the period containing ``day`` (the Python twin of :func:`index_expr`)."""
    days = (day - _EPOCH).days
    indices = {
        "day": days,
        "week": (days + 3) // 7,
        "month": day.year * 12 + day.month - 1,
        "quarter": day.year * 4 + (day.month - 1) // 3,
        "year": day.year,
    }
    if period not in indices:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    return indices[period]


def complete(first: date, last: date, period: Period) -> range:
    """The indices of the periods lying wholly between ``first`` and ``last`` (inclusive):
    the data observe every day of them. Empty when there is none."""
    lo, hi = index_of(first, period), index_of(last, period)
    if bounds(lo, period)[0] < first:
        lo += 1
    if bounds(hi, period)[1] > last:
        hi -= 1
    return range(lo, max(hi + 1, lo))


def bounds(idx: int, period: Period) -> tuple[date, date]:
    """First and last day (inclusive) of period ``idx``."""
    if period == "day":
        d = _EPOCH + timedelta(days=idx)
        return d, d
    if period == "week":
        start = _EPOCH + timedelta(days=idx * 7 - 3)
        return start, start + timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    first_month = idx * months if period != "year" else idx * 12
    start = date(first_month // 12, first_month % 12 + 1, 1)
    nxt = first_month + months
    end = date(nxt // 12, nxt % 12 + 1, 1) - timedelta(days=1)
    return start, end


def label(idx: int, period: Period) -> str:
    """Human label: 2024-03-05, 2024-W10, 2024-03, 2024-Q1, 2024."""
    start, _ = bounds(idx, period)
    if period == "day":
        return start.isoformat()
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{start.year}-{start.month:02d}"
    if period == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)
