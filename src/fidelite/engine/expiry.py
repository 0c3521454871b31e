"""Dates that the expiry and pending policies give to earned points.

An expiry date is the first instant at which the points are no longer available
(exclusive end): points earned on 2026-03-15 with "12 months, end of month" in
Europe/Paris expire at 2027-04-01T00:00+02:00, i.e. they can be spent all of March 2027.

Dates that would fall past the calendar's end (points earned in 9999) are not set: such
points never expire, and an activity then starts no lapse; a hold that would end past it
ends at the calendar's last instant (:mod:`fidelite.engine.calendar`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fidelite.engine.calendar import (
    add_days,
    add_months,
    next_month_start,
    next_year_start,
    within,
)
from fidelite.program.policy import ExpiryMode, ExpiryPolicy, ExpiryRounding, PendingPolicy


def expires_at(policy: ExpiryPolicy, earned_at: datetime, zone: ZoneInfo) -> datetime | None:
    """When points earned at ``earned_at`` expire; ``None`` if they have no fixed date
    (or if it would fall past the calendar's end).

    Under ``inactivity`` the date depends on later activity, so lots carry none and
    :func:`inactivity_deadline` is applied by the expiry job instead.
    """
    if policy.mode is not ExpiryMode.after_earning or policy.months is None:
        return None
    return within(lambda: _expiry(policy, earned_at, zone))


def _expiry(policy: ExpiryPolicy, earned_at: datetime, zone: ZoneInfo) -> datetime:
    assert policy.months is not None
    due = add_months(earned_at, policy.months, zone)
    if policy.rounding is ExpiryRounding.end_of_month:
        return next_month_start(due, zone)
    if policy.rounding is ExpiryRounding.end_of_year:
        return next_year_start(due, zone)
    return due


def inactivity_deadline(
    policy: ExpiryPolicy, last_activity: datetime, zone: ZoneInfo
) -> datetime | None:
    """Under ``inactivity``, when all points lapse if the member does nothing more
    (``None``: never, past the calendar's end)."""
    if policy.mode is not ExpiryMode.inactivity or policy.months is None:
        return None
    months = policy.months
    return within(lambda: add_months(last_activity, months, zone))


@dataclass(frozen=True)
class Lapse:
    """Under ``inactivity``: no activity followed ``last_activity`` before ``deadline``.

    Every point the member earned at or before ``last_activity`` and still held at
    ``deadline`` lapsed then; points earned later are not touched by this lapse.
    """

    last_activity: datetime
    deadline: datetime


def inactivity_lapse(
    policy: ExpiryPolicy, activities: Sequence[datetime], as_of: datetime, zone: ZoneInfo
) -> Lapse | None:
    """The latest lapse at or before ``as_of`` under ``inactivity`` (``None``: none).

    ``activities`` are the member's activity times in ascending order. An activity
    ``a`` starts a lapse when its deadline (:func:`inactivity_deadline`, an exclusive
    instant like every expiry date) is at or before ``as_of`` and the next activity, if
    any, comes at or after that deadline: an activity exactly at the deadline is too
    late to save the points. The *latest* lapse is returned because it covers every
    earlier one (what lapsed before was also earned before it), so a job that runs late,
    or for the first time on old data, catches up in one step.
    """
    if policy.mode is not ExpiryMode.inactivity or policy.months is None:
        return None
    # No span of N calendar months is shorter than 28 x N days (less a DST hour), so a
    # closer next activity saves the points without computing the deadline.
    surely_saved = timedelta(days=28 * policy.months - 1)
    later: datetime | None = None
    for at in reversed(activities):
        if later is None or later - at >= surely_saved:
            deadline = inactivity_deadline(policy, at, zone)  # None: past the calendar
            if deadline is not None and deadline <= as_of and (later is None or later >= deadline):
                return Lapse(at, deadline)
        later = at
    return None


def warning_at(policy: ExpiryPolicy, expiry: datetime, zone: ZoneInfo) -> datetime:
    """When the member is warned about points expiring at ``expiry``: ``warn_days``
    local calendar days of ``zone`` before it, at the same wall-clock time, as expiry
    dates and holds keep it (:func:`~fidelite.engine.calendar.add_days`), so a warning
    30 days before 2026-11-15T00:00+01:00 in Europe/Paris is 2026-10-16T00:00+02:00, not
    23:00 the day before. It stops at the calendar's first instant."""
    return add_days(expiry, -timedelta(days=policy.warn_days), zone)


def pending_until(
    policy: PendingPolicy, event_type: str, at: datetime, zone: ZoneInfo
) -> datetime | None:
    """Until when points from this event stay pending (``None``: available at once):
    ``days`` local calendar days later in ``zone``, at the same wall-clock time, as
    expiry dates keep it (:func:`~fidelite.engine.calendar.add_days`)."""
    if policy.days == 0 or event_type not in policy.event_types:
        return None
    return add_days(at, timedelta(days=policy.days), zone)


class ExpiryDates:
    """:func:`expires_at` for one program, remembering dates that only depend on the month.

    With ``end_of_month`` or ``end_of_year`` rounding the date depends only on the
    local year and month of earning (the day only matters before rounding), so one
    computation serves every event of that month; otherwise each event is computed.
    The memo is bounded by the number of distinct months seen.
    """

    def __init__(self, policy: ExpiryPolicy, zone: ZoneInfo) -> None:
        self._policy = policy
        self._zone = zone
        self._by_month = (
            policy.mode is ExpiryMode.after_earning
            and policy.months is not None
            and policy.rounding in (ExpiryRounding.end_of_month, ExpiryRounding.end_of_year)
        )
        self._months: dict[tuple[int, int], datetime | None] = {}

    def expires_at(self, earned_at: datetime, local: datetime | None = None) -> datetime | None:
        """Same as :func:`expires_at`; ``local`` is ``earned_at`` in the zone, if known."""
        if not self._by_month:
            return expires_at(self._policy, earned_at, self._zone)
        local = local if local is not None else within(lambda: earned_at.astimezone(self._zone))
        if local is None:  # past the calendar's end in the zone: so is any expiry
            return None
        key = (local.year, local.month)
        if key not in self._months:
            self._months[key] = expires_at(self._policy, earned_at, self._zone)
        return self._months[key]
