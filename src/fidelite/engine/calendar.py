"""Calendar arithmetic in a program's time zone (months, month and year starts), and
the calendar's ends: Python dates run from year 1 to year 9999, so a date typed or sent
at either end, or computed from one, may fall outside it (an instant whose UTC time is
in year 0, an expiry months after December 9999)."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

FIRST = datetime.min.replace(tzinfo=UTC)
"""The calendar's first instant (0001-01-01T00:00:00Z)."""
LAST = datetime.max.replace(tzinfo=UTC)
"""The calendar's last instant (9999-12-31T23:59:59.999999Z)."""


def in_utc(at: datetime) -> datetime:
    """``at`` (aware) in UTC; ``ValueError`` naming it if that falls outside the calendar
    (0001-01-01T00:00:00+05:00 is in year 0 in UTC, 9999-12-31T23:00:00-05:00 in 10000)."""
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{at.isoformat()} is outside the calendar once in UTC") from None


def shifted(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, stopped at the calendar's first or last instant: a window that
    would reach past either end (30 days after 9999-12-20) ends there. The offset of
    ``at`` is kept unless its local time is what leaves the calendar."""
    try:
        return at + delta
    except OverflowError:
        pass
    try:
        return at.astimezone(UTC) + delta
    except OverflowError:
        return LAST if delta > timedelta(0) else FIRST


def within(compute: Callable[[], datetime]) -> datetime | None:
    """A date computed from another (months later, the next month or year start, the
    local time in a zone), or None when it falls outside the calendar: no such date can
    be written, so the caller treats it as never reached."""
    try:
        return compute()
    except (ValueError, OverflowError):
        return None


def add_months(at: datetime, months: int, zone: ZoneInfo) -> datetime:
    """``at`` plus ``months`` calendar months in ``zone``; the day is clamped (Jan 31 + 1 = Feb 28).

    Wall-clock time is kept, so a date across a DST change keeps its local hour.
    """
    local = at.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def next_month_start(at: datetime, zone: ZoneInfo) -> datetime:
    """Midnight (in ``zone``) of the first day of the month after ``at``'s month."""
    local = at.astimezone(zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=zone)


def next_year_start(at: datetime, zone: ZoneInfo) -> datetime:
    """Midnight (in ``zone``) of 1 January of the year after ``at``'s year."""
    return datetime(at.astimezone(zone).year + 1, 1, 1, tzinfo=zone)


def year_start(at: datetime, zone: ZoneInfo) -> datetime:
    """Midnight (in ``zone``) of 1 January of ``at``'s year."""
    return datetime(at.astimezone(zone).year, 1, 1, tzinfo=zone)
