"""Calendar periods in the program's zone, for per-member caps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fidelite.program.rule import Period


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
