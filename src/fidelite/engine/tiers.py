"""Tier movements: immediate upgrades, re-qualification with grace, manual assignment.

The member's tier is a small state machine driven by two pure functions, both given
the time: :func:`on_activity` (after each qualifying event: upgrade at once when the
member qualifies for a higher level, or end a grace period) and :func:`review` (run by
the daily job: at each re-qualification date, keep the level, start the grace period
or move down). Every change is returned as a :class:`TierChange` for the member's
timeline, with the qualifying value that justified it.

Invariants: an upgrade never waits; a downgrade only happens at a re-qualification
date (after the grace period, if any) and, with ``one_level``, moves one level at a
time; the base level has no re-qualification date. The one exception is a refund
(:func:`on_refund`): it undoes at once an upgrade its purchase unlocked that the rest
of the member's activity never earned, and dates it later if only later activity did.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import accumulate
from zoneinfo import ZoneInfo

from fidelite.engine.calendar import add_months, next_year_start, within, year_start
from fidelite.program.tier import Downgrade, TierMetric, TierPolicy, WindowKind


@dataclass(frozen=True)
class Activity:
    """A qualifying activity: money spent, points earned and purchases (negative for refunds)."""

    at: datetime
    spend: Decimal = Decimal(0)
    points: int = 0
    purchases: int = 0


@dataclass(frozen=True)
class TierState:
    """Where a member stands. ``review_at`` is the next re-qualification date."""

    tier: str
    since: datetime
    review_at: datetime | None = None
    grace_until: datetime | None = None
    assigned_until: datetime | None = None


class ChangeKind(StrEnum):
    """Kinds of timeline entries."""

    upgrade = "upgrade"
    downgrade = "downgrade"
    requalified = "requalified"
    grace_started = "grace_started"
    assigned = "assigned"
    assignment_expired = "assignment_expired"
    upgrade_reversed = "upgrade_reversed"


@dataclass(frozen=True)
class TierChange:
    """One entry on the member's timeline."""

    at: datetime
    kind: ChangeKind
    from_tier: str
    to_tier: str
    value: Decimal
    reason: str


def window_value(
    policy: TierPolicy, activities: Sequence[Activity], at: datetime, zone: ZoneInfo
) -> Decimal:
    """The qualifying value over the window ending at ``at`` (inclusive).

    A rolling window is ``(at - N months, at]``: an activity exactly N months old has
    left it, so the purchase that earned a tier does not also re-qualify it at the
    review N months later. A calendar-year window is ``[1 January, at]`` of the year
    containing the instant just before ``at``, so a review at midnight on 1 January
    judges the year that just closed. A window that would start before the calendar's
    first year (an event dated year 1) has no start.
    """
    start = _window_start(policy, at, zone)
    if policy.window is WindowKind.rolling:
        inside = [a for a in activities if (start is None or start < a.at) and a.at <= at]
    else:
        inside = [a for a in activities if (start is None or start <= a.at) and a.at <= at]
    if policy.metric is TierMetric.spend:
        return sum((a.spend for a in inside), Decimal(0))
    if policy.metric is TierMetric.points:
        return Decimal(sum(a.points for a in inside))
    return Decimal(sum(a.purchases for a in inside))


def _window_start(policy: TierPolicy, at: datetime, zone: ZoneInfo) -> datetime | None:
    """Where the window ending at ``at`` starts (excluded if rolling, included if
    calendar year; see :func:`window_value`); None: it has no start."""
    if policy.window is WindowKind.rolling:
        return within(lambda: add_months(at, -policy.window_months, zone))
    return within(lambda: year_start(at - timedelta(microseconds=1), zone))


def _measure(policy: TierPolicy, activity: Activity) -> Decimal:
    """What one activity adds to the qualifying value."""
    if policy.metric is TierMetric.spend:
        return activity.spend
    if policy.metric is TierMetric.points:
        return Decimal(activity.points)
    return Decimal(activity.purchases)


def qualified_level(policy: TierPolicy, value: Decimal) -> int:
    """Index of the highest level whose threshold ``value`` reaches."""
    return max(i for i, tier in enumerate(policy.levels) if value >= tier.threshold)


def initial_state(policy: TierPolicy, at: datetime) -> TierState:
    """A new member starts on the base level, with nothing to re-qualify for."""
    return TierState(tier=policy.levels[0].id, since=at)


def on_activity(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    at: datetime,
    zone: ZoneInfo,
) -> tuple[TierState, list[TierChange]]:
    """After a qualifying event at ``at``: upgrade at once, or end a grace period."""
    value = window_value(policy, activities, at, zone)
    current, reached = policy.index(state.tier), qualified_level(policy, value)
    if reached > current:
        target = policy.levels[reached]
        new = TierState(target.id, at, _next_review(policy, at, zone))
        reason = f"{policy.metric.value} {value} reached {target.threshold}"
        return new, [TierChange(at, ChangeKind.upgrade, state.tier, target.id, value, reason)]
    if state.grace_until is not None and reached >= current:
        new = replace(state, review_at=_next_review(policy, at, zone), grace_until=None)
        reason = f"{policy.metric.value} {value} meets {policy.levels[current].threshold}"
        return new, [TierChange(at, ChangeKind.requalified, state.tier, state.tier, value, reason)]
    return state, []


def on_refund(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    purchase_at: datetime,
    at: datetime,
    zone: ZoneInfo,
) -> tuple[TierState, list[TierChange]]:
    """After a refund at ``at`` of a purchase made at ``purchase_at``.

    ``activities`` are the member's, the refunded part already taken out. Only a level
    reached at or after the purchase (``state.since``) is looked at; older levels are
    left to re-qualification, as is a manual assignment. The member keeps the level if
    the remaining value reached its threshold at some moment from the upgrade to the
    refund, each moment judged over its own window (a purchase made after the upgrade
    counts from its own time, one that left a rolling window no longer counts):

    - reached at the upgrade already: nothing changes;
    - reached only later: the level now dates from that moment, and so does its next
      re-qualification (``requalified`` on the timeline, value at that moment);
    - never reached: the upgrade is undone (``upgrade_reversed``, with the highest value
      the member had from the upgrade to the refund): the member goes to the level
      they qualified for at the upgrade, or to a higher one (still below the level
      taken back) from the first moment they qualified for it.
    """
    if state.assigned_until is not None or state.since < purchase_at:
        return state, []
    current = policy.index(state.tier)
    threshold = policy.levels[current].threshold
    value = window_value(policy, activities, state.since, zone)
    if value >= threshold:
        return state, []
    level, since = qualified_level(policy, value), state.since
    best, best_at = value, state.since
    for moment, moment_value in _values_after(policy, activities, state.since, at, zone):
        if moment_value > best:
            best, best_at = moment_value, moment
        reached = min(qualified_level(policy, moment_value), current)
        if reached > level:
            level, since = reached, moment
            if level == current:
                break
    if level == current:
        value = window_value(policy, activities, since, zone)
        day = since.astimezone(zone).date()
        reason = f"refund: {policy.metric.value} {value} reaches {threshold} from {day}"
        new = TierState(state.tier, since, _next_review(policy, since, zone))
        return new, [TierChange(at, ChangeKind.requalified, state.tier, state.tier, value, reason)]
    value = window_value(policy, activities, best_at, zone)
    tier = policy.levels[level]
    review_at = None if level == 0 else _next_review(policy, since, zone)
    reason = f"refund: {policy.metric.value} {value} no longer reaches {threshold}"
    change = TierChange(at, ChangeKind.upgrade_reversed, state.tier, tier.id, value, reason)
    return TierState(tier.id, since, review_at), [change]


def _values_after(
    policy: TierPolicy,
    activities: Sequence[Activity],
    after: datetime,
    until: datetime,
    zone: ZoneInfo,
) -> list[tuple[datetime, Decimal]]:
    """The qualifying value at each moment of activity in ``(after, until]``, in time
    order, each over its own window (as :func:`window_value` counts it, in one pass:
    comparable values, not for display, whose exponent may differ)."""
    timed = sorted((a.at, _measure(policy, a)) for a in activities if a.at <= until)
    times = [t for t, _ in timed]
    totals = list(accumulate((v for _, v in timed), initial=Decimal(0)))
    rolling = policy.window is WindowKind.rolling
    values: list[tuple[datetime, Decimal]] = []
    for moment in sorted({t for t in times if after < t}):
        start = _window_start(policy, moment, zone)
        first = 0
        if start is not None:
            first = bisect_right(times, start) if rolling else bisect_left(times, start)
        values.append((moment, totals[bisect_right(times, moment)] - totals[first]))
    return values


def review(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    as_of: datetime,
    zone: ZoneInfo,
) -> tuple[TierState, list[TierChange]]:
    """Apply every re-qualification step due at or before ``as_of``, in date order."""
    changes: list[TierChange] = []
    while True:
        step = _next_step(policy, state, activities, as_of, zone)
        if step is None:
            return state, changes
        state, change = step
        changes.append(change)


def assign(
    policy: TierPolicy,
    state: TierState,
    tier: str,
    at: datetime,
    until: datetime,
    reason: str,
) -> tuple[TierState, TierChange]:
    """Put a member on ``tier`` by hand until ``until`` (no review before then)."""
    policy.index(tier)  # raises ValueError for an unknown tier
    if until <= at:
        raise ValueError("a manual assignment must end after it starts")
    new = TierState(tier, at, review_at=None, grace_until=None, assigned_until=until)
    return new, TierChange(at, ChangeKind.assigned, state.tier, tier, Decimal(0), reason)


def _next_review(policy: TierPolicy, at: datetime, zone: ZoneInfo) -> datetime | None:
    """Rolling windows: ``requalify_months`` later; calendar years: the next 1 January.
    None past the calendar's last year (9999): no re-qualification can be dated."""
    if policy.window is WindowKind.calendar_year:
        return within(lambda: next_year_start(at, zone))
    return within(lambda: add_months(at, policy.requalify_months, zone))


def _next_step(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    as_of: datetime,
    zone: ZoneInfo,
) -> tuple[TierState, TierChange] | None:
    if state.assigned_until is not None:
        if as_of < state.assigned_until:
            return None
        return _assignment_expired(policy, state, activities, zone)
    due = state.grace_until or state.review_at
    if due is None or as_of < due:
        return None
    value = window_value(policy, activities, due, zone)
    current = policy.index(state.tier)
    threshold = policy.levels[current].threshold
    if value >= threshold:
        new = TierState(state.tier, state.since, _next_review(policy, due, zone))
        reason = f"{policy.metric.value} {value} meets {threshold}"
        return new, TierChange(due, ChangeKind.requalified, state.tier, state.tier, value, reason)
    grace = within(lambda: add_months(due, policy.grace_months, zone))
    if state.grace_until is None and policy.grace_months > 0 and grace is not None:
        new = replace(state, grace_until=grace)
        reason = f"{policy.metric.value} {value} below {threshold}; grace until {grace.date()}"
        change = TierChange(due, ChangeKind.grace_started, state.tier, state.tier, value, reason)
        return new, change
    return _downgrade(policy, state, value, due, zone)


def _downgrade(
    policy: TierPolicy, state: TierState, value: Decimal, at: datetime, zone: ZoneInfo
) -> tuple[TierState, TierChange]:
    current, reached = policy.index(state.tier), qualified_level(policy, value)
    target = reached if policy.downgrade is Downgrade.to_qualified else max(current - 1, reached)
    tier = policy.levels[target]
    review_at = None if target == 0 else _next_review(policy, at, zone)
    threshold = policy.levels[current].threshold
    reason = f"{policy.metric.value} {value} below {threshold} at re-qualification"
    change = TierChange(at, ChangeKind.downgrade, state.tier, tier.id, value, reason)
    return TierState(tier.id, at, review_at), change


def _assignment_expired(
    policy: TierPolicy, state: TierState, activities: Sequence[Activity], zone: ZoneInfo
) -> tuple[TierState, TierChange]:
    at = state.assigned_until
    assert at is not None
    value = window_value(policy, activities, at, zone)
    tier = policy.levels[qualified_level(policy, value)]
    review_at = None if tier.id == policy.levels[0].id else _next_review(policy, at, zone)
    reason = f"manual assignment ended; {policy.metric.value} {value} qualifies for {tier.id}"
    change = TierChange(at, ChangeKind.assignment_expired, state.tier, tier.id, value, reason)
    return TierState(tier.id, at, review_at), change
