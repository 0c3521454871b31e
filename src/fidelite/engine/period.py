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

Labels are those :func:`local_period_key` writes, the only ones the store records and
``program simulate`` accepts. A day, week, month or year looks up just the labels that
can overlap it (at most 434, for a year), never the member's other rows: a member with
years of daily usage costs what a new one does. ``ever`` overlaps every label: it adds
up all of the rule's (any other shape included).
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
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

    ``ever``, and a label of no known shape (none is written so), span all time.
    """
    try:
        return _parse_label(label)
    except ValueError:
        return _ALL_TIME


def _parse_label(label: str) -> Span:
    """The span of a label :func:`local_period_key` writes; the calendar's last week
    (9999-W52, whose Sunday would be in 10000) ends on its last day."""
    if label == "ever":
        return _ALL_TIME
    year, sep, rest = label.partition("-")
    if not sep:
        return date(int(year), 1, 1), date(int(year), 12, 31)
    if rest.startswith("W"):
        monday = date.fromisocalendar(int(year), int(rest[1:]), 1)
        last_monday = date.max - timedelta(days=6)
        return monday, date.max if monday > last_monday else monday + timedelta(days=6)
    month, sep, day = rest.partition("-")
    if sep:
        one = date(int(year), int(month), int(day))
        return one, one
    first = date(int(year), int(month), 1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def used_in_period(
    rule_points: Mapping[tuple[str, str], int], rule_id: str, period: Period, local: datetime
) -> tuple[str, int]:
    """The label of the ``period`` containing ``local`` (in the program's zone) and the
    points ``rule_id`` already gave in it: those recorded under that label plus those
    recorded under any other label whose days overlap its days (module docstring).

    A period of days (day, week, month, year) looks up only the labels that can overlap
    it (:func:`_overlapping_keys`, built once per label): the cost does not grow with
    the member's usage rows. ``ever`` overlaps every label: it sums all of the rule's.
    """
    key = local_period_key(period, local)
    if period is Period.ever:
        return key, sum(points for (rule, _), points in rule_points.items() if rule == rule_id)
    candidates = _overlapping_keys(rule_id, key)
    found: AbstractSet[tuple[str, str]]
    if len(rule_points) < len(candidates):
        found = candidates.intersection(rule_points)  # walks the member's few rows
    else:
        found = rule_points.keys() & candidates  # walks the candidates only
    return key, sum(rule_points[found_key] for found_key in found)


@functools.lru_cache(maxsize=4096)
def _overlapping_keys(rule_id: str, key: str) -> frozenset[tuple[str, str]]:
    """``(rule_id, label)`` for every label :func:`local_period_key` writes whose days
    overlap those of ``key`` (a day, week, month or year label): ``key`` itself, each
    day, ISO week, month and year with a day in it, and ``ever``. Exactly the labels
    :func:`overlap` would find among those written: a written label of a kind names the
    days that kind writes it for, so it overlaps ``key`` if and only if it is written for
    one of ``key``'s days."""
    return frozenset((rule_id, label) for label in _overlapping_labels(key))


@functools.lru_cache(maxsize=1024)
def _overlapping_labels(key: str) -> frozenset[str]:
    """The labels of :func:`_overlapping_keys`, whatever the rule (at most 434: a year)."""
    first, last = label_span(key)
    labels = {"ever"}
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        noon = datetime(day.year, day.month, day.day, 12)
        labels.update(local_period_key(kind, noon) for kind in _DAY_KINDS)
    return frozenset(labels)


_DAY_KINDS = (Period.day, Period.week, Period.month, Period.year)
"""The periods made of whole days (all but ``ever``)."""


def overlap(one: Span, other: Span) -> bool:
    """Whether two spans of days share at least one day."""
    return one[0] <= other[1] and other[0] <= one[1]
