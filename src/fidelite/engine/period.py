"""Calendar periods in the program's zone, for per-member caps.

A member's cap usage is kept per rule and period label (``rule_usage``): ``2026-11``
for a month, ``2026-W47`` for an ISO week, ``2026-11-20`` for a day, ``2026`` for a
year, ``ever``. A program may change a rule's cap period while it runs (50 a month
becomes 100 a year): the labels recorded under the old kind stay. What a rule already
gave counts against the current period whatever kind it was recorded under: every
label whose days overlap the current period's counts in full
(:func:`used_in_period`). A label only partly inside (a week straddling two months, a
year seen from one of its months) counts whole against each period it overlaps: it
never lets a member get more than the cap, and may let them get less (the recorded
label does not say on which of its days the points were given). Labels of the same
kind never overlap, so a rule whose period never changed reads exactly its own label.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fidelite.program.rule import Period

Span = tuple[date, date]
"""First and last local day of a period, both included."""

_ALL_TIME: Span = (date.min, date.max)


def period_key(period: Period, at: datetime, zone: ZoneInfo) -> str:
    """A stable key naming the period containing ``at``, e.g. ``2026-11`` for a month.

    Weeks are ISO weeks (Monday first): ``2026-W47``.
    """
    return local_period_key(period, at.astimezone(zone))


def local_period_key(period: Period, local: datetime) -> str:
    """:func:`period_key` for a time already in the program's zone."""
    if period is Period.day:
        return local.date().isoformat()
    if period is Period.week:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.month:
        return f"{local.year}-{local.month:02d}"
    if period is Period.year:
        return str(local.year)
    return "ever"


@functools.lru_cache(maxsize=8192)
def label_span(label: str) -> Span:
    """The days of the period a label names (as :func:`local_period_key` writes it).

    ``ever``, and a label of no known shape (none is written so), span all time: what
    it counted then counts against every period, never less than the cap allows.
    """
    try:
        return _parse_label(label)
    except ValueError:
        return _ALL_TIME


def _parse_label(label: str) -> Span:
    if label == "ever":
        return _ALL_TIME
    year, sep, rest = label.partition("-")
    if not sep:
        return date(int(year), 1, 1), date(int(year), 12, 31)
    if rest.startswith("W"):
        monday = date.fromisocalendar(int(year), int(rest[1:]), 1)
        return monday, monday + timedelta(days=6)
    month, sep, day = rest.partition("-")
    if sep:
        one = date(int(year), int(month), int(day))
        return one, one
    first = date(int(year), int(month), 1)
    return first, _next_month(first) - timedelta(days=1)


def _next_month(first: date) -> date:
    if first.month == 12:
        return date(first.year + 1, 1, 1)
    return date(first.year, first.month + 1, 1)


def used_in_period(
    rule_points: Mapping[tuple[str, str], int], rule_id: str, period: Period, local: datetime
) -> tuple[str, int]:
    """The label of the ``period`` containing ``local`` (in the program's zone) and the
    points ``rule_id`` already gave in it: those recorded under that label plus those
    recorded under any other label whose days overlap its days (module docstring).

    Labels are parsed once per process (cached); a member whose rule kept its period
    has only labels of that kind, which never overlap another label than their own.
    """
    key = local_period_key(period, local)
    used = rule_points.get((rule_id, key), 0)
    current: Span | None = None
    for (rule, label), points in rule_points.items():
        if rule != rule_id or label == key or not points:
            continue
        if current is None:
            current = label_span(key)
        if overlap(current, label_span(label)):
            used += points
    return key, used


def overlap(one: Span, other: Span) -> bool:
    """Whether two spans of days share at least one day."""
    return one[0] <= other[1] and other[0] <= one[1]
