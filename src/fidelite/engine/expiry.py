"""Dates that the expiry and pending policies give to earned points.

An expiry date is the first instant at which the points are no longer available
(exclusive end): points earned on 2026-03-15 with "12 months, end of month" in
Europe/Paris expire at 2027-04-01T00:00+02:00, i.e. they can be spent all of March 2027.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fidelite.engine.calendar import add_months, next_month_start, next_year_start
from fidelite.program.policy import ExpiryMode, ExpiryPolicy, ExpiryRounding, PendingPolicy


def expires_at(policy: ExpiryPolicy, earned_at: datetime, zone: ZoneInfo) -> datetime | None:
    """When points earned at ``earned_at`` expire; ``None`` if they have no fixed date.

    Under ``inactivity`` the date depends on later activity, so lots carry none and
    :func:`inactivity_deadline` is applied by the expiry job instead.
    """
    if policy.mode is not ExpiryMode.after_earning or policy.months is None:
        return None
    due = add_months(earned_at, policy.months, zone)
    if policy.rounding is ExpiryRounding.end_of_month:
        return next_month_start(due, zone)
    if policy.rounding is ExpiryRounding.end_of_year:
        return next_year_start(due, zone)
    return due


def inactivity_deadline(
    policy: ExpiryPolicy, last_activity: datetime, zone: ZoneInfo
) -> datetime | None:
    """Under ``inactivity``, when all points lapse if the member does nothing more."""
    if policy.mode is not ExpiryMode.inactivity or policy.months is None:
        return None
    return add_months(last_activity, policy.months, zone)


def warning_at(policy: ExpiryPolicy, expiry: datetime) -> datetime:
    """When the member is warned about points expiring at ``expiry``."""
    return expiry - timedelta(days=policy.warn_days)


def pending_until(policy: PendingPolicy, event_type: str, at: datetime) -> datetime | None:
    """Until when points from this event stay pending (``None``: available at once)."""
    if policy.days == 0 or event_type not in policy.event_types:
        return None
    return at + timedelta(days=policy.days)
