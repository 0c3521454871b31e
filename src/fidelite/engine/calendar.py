"""Calendar arithmetic in a program's time zone (months, month and year starts)."""

from __future__ import annotations

import calendar
from datetime import datetime
from zoneinfo import ZoneInfo


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
