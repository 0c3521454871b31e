"""Tier movements: immediate upgrades, re-qualification with grace, manual assignment.

The member's tier is a small state machine driven by two pure functions, both given
the time: :func:`on_activity` (after each qualifying event: upgrade at once when the
member qualifies for a higher level, or end a grace period) and :func:`review` (run by
the daily job, and by the processor before anything is decided for a member whose step
is due: at each re-qualification date, keep the level, start the grace period or move
down; at the end of a manual assignment, take the level, and dates, the member
would have had without it).
Every change is returned as a :class:`TierChange` for the member's timeline, with the
qualifying value that justified it.

Invariants: an upgrade never waits; a downgrade only happens at a re-qualification
date (after the grace period, if any) and, with ``one_level``, moves one level at a
time; the base level has no re-qualification date. The one exception is a refund
(:func:`on_refund`): it plays the member's history again without what was refunded,
so it undoes at once an upgrade its purchase unlocked that the rest of the member's
activity never earned (back to the level held before, with its dates), dates it later
if only later activity did, and writes the re-qualifications, grace periods and
downgrades that went otherwise without the purchase (up to the member's latest
activity when the refund is dated before it); the member's dates are then the
ones those steps give, and each entry is dated at the refund (or at the date the
member's level dates from, when later). A manual assignment is
a fact the refund does not undo: the history is played again from the latest one
(:class:`Assignment`), which set the level whatever came before it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import accumulate
from zoneinfo import ZoneInfo

from fidelite.engine.calendar import (
    add_months,
    months_back,
    next_year_start,
    within,
    year_start,
)
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


@dataclass(frozen=True)
class Assignment:
    """A manual assignment on the member's timeline: ``tier`` from ``at`` to ``until``
    (it may have ended earlier in fact, replaced by an upgrade the refund may undo).
    ``until`` None: recorded before migration 0007 and replaced before its end; its end
    is unknown."""

    at: datetime
    tier: str
    until: datetime | None
    reason: str


class ChangeKind(StrEnum):
    """Kinds of timeline entries."""

    upgrade = "upgrade"
    downgrade = "downgrade"
    requalified = "requalified"
    grace_started = "grace_started"
    assigned = "assigned"
    assignment_expired = "assignment_expired"
    upgrade_reversed = "upgrade_reversed"


VALUE_PLACES = Decimal("0.0001")
"""The places of a timeline entry's qualifying value: those the timeline keeps
(``tier_changes.value``, four decimals), so that an entry reads the same when it is
made (an event's answer, the daily job, an assignment) and when it is read back."""


@dataclass(frozen=True)
class TierChange:
    """One entry on the member's timeline; ``value`` always has four decimal places
    (:data:`VALUE_PLACES`), whatever the metric or the sum it came from."""

    at: datetime
    kind: ChangeKind
    from_tier: str
    to_tier: str
    value: Decimal
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", self.value.quantize(VALUE_PLACES))


def _figure(value: Decimal) -> str:
    """A qualifying value or threshold as a reason writes it, the same on every path and
    metric: without trailing zeros (``spend 0``, ``spend 400``, ``spend 350.5``,
    ``points 500``), whatever places the sum it came from had (the entry's ``value`` has
    four) or the program file gave the threshold (``300.50``, ``"1000.00"``)."""
    return "0" if value == 0 else f"{value.normalize():f}"


def window_value(
    policy: TierPolicy,
    activities: Sequence[Activity],
    at: datetime,
    zone: ZoneInfo,
    *,
    step: bool = False,
) -> Decimal:
    """The qualifying value over the window ending at ``at``.

    The window of an event at ``at`` (``step`` False) holds the activity at ``at``; the
    window a re-qualification step due at ``at`` judges (``step`` True: a review, the
    end of a grace period or of a manual assignment) ends just before it: the step
    comes first and an activity at that very instant comes after it.

    A rolling window starts ``window_months`` before ``at`` (excluded; see
    :func:`~fidelite.engine.calendar.months_back`): an activity exactly
    ``window_months`` old, as :func:`~fidelite.engine.calendar.add_months` counts the
    months (day clamped, local clock time kept), has left it, so the purchase that
    earned a tier does not also re-qualify it at the review ``window_months`` later,
    even when that review's day was clamped (an upgrade on 29 February) or its local
    time repeated (a fall-back night). A calendar-year window is the calendar year
    holding ``at``, from its 1 January: an event at midnight on 1 January counts in the
    year it opens; a step judges the year holding the instant just before ``at``, so a
    review at midnight on 1 January judges the year that just closed, and only it. A
    window that would start before the calendar's first year (an event dated year 1)
    has no start.
    """
    start = window_start(policy, at, zone, step=step)
    rolling = policy.window is WindowKind.rolling
    inside = [
        a
        for a in activities
        if (start is None or (start < a.at if rolling else start <= a.at))
        and (a.at < at if step else a.at <= at)
    ]
    if policy.metric is TierMetric.spend:
        return sum((a.spend for a in inside), Decimal(0))
    if policy.metric is TierMetric.points:
        return Decimal(sum(a.points for a in inside))
    return Decimal(sum(a.purchases for a in inside))


def window_start(
    policy: TierPolicy, at: datetime, zone: ZoneInfo, *, step: bool = False
) -> datetime | None:
    """Where the window ending at ``at`` starts (excluded if rolling, included if
    calendar year; ``step``: the window a step due at ``at`` judges; see
    :func:`window_value`); None: it has no start. It never goes back as ``at`` moves on
    (local time), so the windows of later events start no earlier."""
    if policy.window is WindowKind.rolling:
        return within(lambda: months_back(at, policy.window_months, zone))
    if step:
        return within(lambda: year_start(at - timedelta(microseconds=1), zone))
    return within(lambda: year_start(at, zone))


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


def retired(policy: TierPolicy, state: TierState) -> bool:
    """Whether the member holds a level the program no longer has (removed from the
    file since they reached it): :func:`leave_retired` moves them first."""
    return all(tier.id != state.tier for tier in policy.levels)


def leave_retired(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    at: datetime,
    zone: ZoneInfo,
) -> tuple[TierState, list[TierChange]]:
    """A member on a level the program no longer has is moved at ``at`` (their next
    event, refund, redemption, assignment or review) to the level their qualifying value
    reaches then (the base level at least), with its next re-qualification counted from
    ``at``; a ``downgrade`` entry whose reason names the removed level. Anything else is
    returned as it is."""
    if not retired(policy, state):
        return state, []
    value = window_value(policy, activities, at, zone)
    reached = qualified_level(policy, value)
    target = policy.levels[reached]
    review_at = None if reached == 0 else _next_review(policy, at, zone)
    reason = (
        f"level {state.tier} is no longer in the program; {policy.metric.value} "
        f"{_figure(value)} qualifies for {target.id}"
    )
    change = TierChange(at, ChangeKind.downgrade, state.tier, target.id, value, reason)
    return TierState(target.id, at, review_at), [change]


def enter_ladder(
    policy: TierPolicy, activities: Sequence[Activity], at: datetime, zone: ZoneInfo
) -> tuple[TierState, TierChange]:
    """A member with no level (enrolled while the program had no tiers, or moved off a
    removed ladder) in a program that has tiers now enters the ladder at ``at`` (their
    next event, refund, redemption, assignment or review), as :func:`leave_retired`
    moves a member off a removed level: on the level their qualifying value reaches then
    (the base level at least), its next re-qualification counted from ``at``; an
    ``upgrade`` entry from no tier (``""``)."""
    value = window_value(policy, activities, at, zone)
    reached = qualified_level(policy, value)
    target = policy.levels[reached]
    review_at = None if reached == 0 else _next_review(policy, at, zone)
    reason = (
        f"the program has tiers now; {policy.metric.value} {_figure(value)} "
        f"qualifies for {target.id}"
    )
    change = TierChange(at, ChangeKind.upgrade, "", target.id, value, reason)
    return TierState(target.id, at, review_at), change


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
    """After a qualifying event at ``at``: upgrade at once, or end a grace period. A
    member on a level the program no longer has is moved first (:func:`leave_retired`)."""
    if retired(policy, state):
        return leave_retired(policy, state, activities, at, zone)
    value = window_value(policy, activities, at, zone)
    current, reached = policy.index(state.tier), qualified_level(policy, value)
    if reached > current:
        target = policy.levels[reached]
        new = TierState(target.id, at, _next_review(policy, at, zone))
        reason = f"{policy.metric.value} {_figure(value)} reached {_figure(target.threshold)}"
        return new, [TierChange(at, ChangeKind.upgrade, state.tier, target.id, value, reason)]
    if state.grace_until is not None and reached >= current:
        new = replace(state, review_at=_next_review(policy, at, zone), grace_until=None)
        threshold = _figure(policy.levels[current].threshold)
        reason = f"{policy.metric.value} {_figure(value)} meets {threshold}"
        return new, [TierChange(at, ChangeKind.requalified, state.tier, state.tier, value, reason)]
    return state, []


def on_refund(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    purchase_at: datetime,
    at: datetime,
    zone: ZoneInfo,
    assignments: Sequence[Assignment] = (),
    *,
    enrolled: datetime | None,
    held_threshold: Decimal | None = None,
    refunded: Sequence[Activity] | None = None,
) -> tuple[TierState, list[TierChange]]:
    """After a refund at ``at`` of a purchase made at ``purchase_at``.

    ``held_threshold``: the threshold the member's level was reached (or last kept) at,
    as its timeline entry records it (:func:`recorded_threshold`; None: unknown). A
    threshold raised in the program file since is not applied back to the refund: the
    level is judged by the lower of the two (a lowered one by the file's), as it was
    reached; the next re-qualification applies the file's.

    ``activities`` are the member's, the refunded part already taken out. The tier
    history is played again without what was refunded, from a moment the refund cannot
    have changed, up to the refund, or to the latest activity or the state's ``since``
    when later (:func:`_refund_horizon`: a refund sent after what is dated later than
    it ends where one sent in date order would have): upgrades when the value reaches
    a threshold (each moment over its own window), and every re-qualification, grace
    period and downgrade at its own date, as :func:`on_activity` and :func:`review`
    apply them. That moment is the date the current level was reached, when the
    purchase came after it (the member then had that level with its next
    re-qualification date, whatever the purchase did); otherwise the latest of the
    member's manual ``assignments`` dated by the end of that history (the member held
    its tier from then whatever came before, the purchase included, until its end or
    an upgrade, which the history played again decides; an earlier assignment it
    replaced no longer matters; its end unknown:
    see :func:`_refund_anchor`); otherwise the base level before any activity. A
    manual assignment in force is left alone.

    Only what the refund changes is written; each entry is dated at the refund (the
    member held the level until then), or at the state's ``since`` when the refund is
    dated before it (never before the change it undoes), and the member's dates (``since``,
    ``review_at``, ``grace_until``) are the ones the history played again gives:

    - the upgrade the purchase unlocked is undone (``upgrade_reversed``, with the
      highest value from the upgrade to the refund) back to the level held before the
      purchase, with its own dates (a grace period in course, a level kept by a
      one-level downgrade), or to a higher one still below the level taken back, from
      the first moment later activity reached it;
    - reached again only by later activity: the level now dates from that moment, and
      so does its next re-qualification (``requalified``, value at that moment);
    - every re-qualification step from the purchase to the refund that now goes
      otherwise is written in date order after it, its reason saying the date it took
      effect (``refund: on 2026-01-10, spend 0 below 300 at re-qualification``): a grace
      period started, a downgrade (one level at a time with ``one_level``), a level
      kept, an upgrade by later activity;
    - a grace period the purchase ended (``requalified`` during the grace) starts again
      until its own end (``grace_started``), or, when that end has passed, gives way to
      the downgrade written as above.

    Nothing changes when the history played again ends where the member stands, the
    due re-qualifications apart (left to the daily job), and when it ends on the
    member's level where the same history played with the refunded part
    (``refunded``: the member's activities before the refund; None: not known) ends:
    the refund changes nothing of it, so a history that is not the member's (played with
    the file's ladder, a threshold lowered or a level added since) moves none of the
    member's dates. A base level
    never left is dated from ``enrolled``, the member's enrolment, when they started on
    it (None, unknown: the state's ``since``): the level held before the upgrade taken
    back, with its own date, not the upgrade's.
    """
    if retired(policy, state):
        return leave_retired(policy, state, activities, at, zone)
    if state.assigned_until is not None:
        return state, []
    policy = _as_reached(policy, state.tier, held_threshold)
    through = _refund_horizon(state, activities, at)
    start, replayed, steps = _refund_replay(
        policy, state, activities, purchase_at, through, zone, assignments
    )
    played = replayed
    if replayed.since == _BEFORE_ANY:
        replayed = replace(replayed, since=state.since if enrolled is None else enrolled)
    current, _ = review(policy, state, activities, through, zone)
    if replayed == current:
        return state, []
    if refunded is not None and replayed.tier == current.tier:  # the same, with it: no change
        _, kept, _ = _refund_replay(
            policy, state, refunded, purchase_at, through, zone, assignments
        )
        if kept == played:
            return state, []
    before = next((s.to_tier for s in reversed(steps) if s.at < purchase_at), start.tier)
    later = [s for s in steps if s.at >= purchase_at]
    on = max(at, state.since)
    entries = _refund_entries(policy, state, activities, before, later, on, zone, through)
    if entries:
        return replayed, entries
    return _refund_without_step(policy, state, replayed, activities, on, zone, through)


def _refund_replay(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    purchase_at: datetime,
    through: datetime,
    zone: ZoneInfo,
    assignments: Sequence[Assignment],
) -> tuple[TierState, TierState, list[TierChange]]:
    """The history :func:`on_refund` plays again: where it starts (its anchor), where it
    ends, and its steps in date order."""
    made = sorted((a for a in assignments if a.at <= through), key=lambda a: a.at)
    start = _refund_anchor(policy, state, purchase_at, zone, made)
    if retired(policy, start):  # an assignment to a level removed since: left at its date
        start, _ = leave_retired(policy, start, activities, start.since, zone)
    replayed, steps = _replay(policy, start, activities, through, zone, made)
    return start, replayed, steps


@dataclass(frozen=True)
class Levels:
    """The levels of a tier history played again: ``start`` (its anchor) and its steps.

    :meth:`at` gives the level an event at a moment was evaluated on. ``earlier``: the
    history before ``start`` (a manual assignment it is anchored on), played from the
    base level up to it."""

    start: TierState
    steps: tuple[TierChange, ...]
    earlier: Levels | None = None

    def at(self, moment: datetime) -> str | None:
        """The level an event at ``moment`` had: the steps before it, and those due at
        that very moment (a re-qualification comes before the event), not an upgrade or
        a requalification at it (the event's own doing: it comes after). None: the
        history starts after ``moment`` (unknown)."""
        if self.start.since > moment:
            return None if self.earlier is None else self.earlier.at(moment)
        tier = self.start.tier
        for step in self.steps:
            if step.at > moment:
                break
            if step.at < moment or step.kind not in _AFTER_THE_EVENT:
                tier = step.to_tier
        return tier

    def differs_from(self, other: Levels, since: datetime) -> bool:
        """Whether ``other`` gives an event at or after ``since`` another level than
        this history does (compared at ``since`` and at each step of either from then)."""
        steps = [s.at for s in (*self._all_steps(), *other._all_steps()) if s.at >= since]
        starts = [h.start.since for h in (self, other) if h.start.since >= since]
        moments = [since, *steps, *starts, *(at + timedelta(microseconds=1) for at in steps)]
        return any(self.at(m) != other.at(m) for m in moments)

    def _all_steps(self) -> tuple[TierChange, ...]:
        """Its steps, those of the history before its start first."""
        return self.steps if self.earlier is None else (*self.earlier._all_steps(), *self.steps)


_AFTER_THE_EVENT = frozenset({ChangeKind.upgrade, ChangeKind.requalified})


def refund_levels(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    purchase_at: datetime,
    at: datetime,
    zone: ZoneInfo,
    assignments: Sequence[Assignment] = (),
    *,
    held_threshold: Decimal | None = None,
) -> Levels | None:
    """The levels the history :func:`on_refund` plays again for a refund at ``at`` of a
    purchase at ``purchase_at`` gives the member at each moment, with the same
    ``activities`` (those of the member before the refund give the levels the member
    had); None where :func:`on_refund` plays no history (a level the program no longer
    has, a manual assignment in force)."""
    if retired(policy, state) or state.assigned_until is not None:
        return None
    policy = _as_reached(policy, state.tier, held_threshold)
    through = _refund_horizon(state, activities, at)
    made = sorted((a for a in assignments if a.at <= through), key=lambda a: a.at)
    return _levels(policy, state, activities, purchase_at, through, zone, made)


def _levels(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    purchase_at: datetime,
    through: datetime,
    zone: ZoneInfo,
    made: list[Assignment],
) -> Levels:
    """The :class:`Levels` of the history :func:`_refund_replay` plays up to ``through``
    (``made``: the assignments by then, in time order); anchored on the latest one, with
    the history before it, played the same way up to its date."""
    start, _, steps = _refund_replay(policy, state, activities, purchase_at, through, zone, made)
    earlier = None
    if state.since >= purchase_at and made and made[-1].until is not None:
        last, before = made[-1], list(made[:-1])
        if before and before[-1].until is not None:  # replaced by the latest from its date
            before[-1] = replace(before[-1], until=min(before[-1].until, last.at))
        earlier = _levels(policy, state, activities, purchase_at, last.at, zone, before)
    return Levels(start, tuple(steps), earlier)


def last_step(
    policy: TierPolicy, state: TierState, zone: ZoneInfo, *, enrolled: datetime | None
) -> datetime | None:
    """The date of the latest step that ``state`` shows was taken: the level's start, a
    grace period's start (its re-qualification date, kept in ``review_at``), or the
    re-qualification that set ``review_at`` (a rolling window's ``requalify_months``
    before it; a calendar year's 1 January). None: none, the base level held since
    ``enrolled``, the member's enrolment. A qualifying event dated before it came after
    steps dated later (:func:`on_late_activity`)."""
    if state.review_at is None and state.grace_until is None and state.since == enrolled:
        return None
    moments = [state.since]
    if state.review_at is not None and state.grace_until is not None:
        moments.append(state.review_at)
    elif state.review_at is not None and policy.window is WindowKind.calendar_year:
        moments.append(year_start(state.review_at - timedelta(days=1), zone))
    elif state.review_at is not None:
        moments.append(months_back(state.review_at, policy.requalify_months, zone))
    return max(moments)


def on_late_activity(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    at: datetime,
    through: datetime,
    zone: ZoneInfo,
    assignments: Sequence[Assignment] = (),
    *,
    enrolled: datetime | None,
) -> tuple[TierState, list[TierChange]]:
    """After a qualifying event at ``at`` sent after tier steps dated later than it (older
    history imported after the daily job ran, or after later events): the member ends
    where the same events sent in date order would have left them. The history is played
    again with the event (``activities`` hold it), as a refund's is
    (:func:`on_refund`), from a moment the event cannot have changed
    (:func:`_refund_anchor`: the current level's start when it is earlier, else the
    latest manual assignment, else the base level) to ``through``, the latest step or
    activity already on the member's record. Returned: that state (a manual assignment
    in force is left alone, as :func:`on_activity` leaves it), and the steps from ``at``
    on that the history played again takes, each at its own date (the caller leaves out
    those already on the timeline)."""
    if retired(policy, state) or state.assigned_until is not None:
        return on_activity(policy, state, activities, at, zone)
    made = sorted((a for a in assignments if a.at <= through), key=lambda a: a.at)
    start = _refund_anchor(policy, state, at, zone, made)
    if retired(policy, start):  # an assignment to a level removed since: left at its date
        start, _ = leave_retired(policy, start, activities, start.since, zone)
    replayed, steps = _replay(policy, start, activities, through, zone, made)
    if replayed.since == _BEFORE_ANY:
        replayed = replace(replayed, since=state.since if enrolled is None else enrolled)
    return replayed, [s for s in steps if s.at >= at]


def _refund_horizon(state: TierState, activities: Sequence[Activity], at: datetime) -> datetime:
    """How far a refund at ``at`` plays the member's history again: to the refund, or
    further when the member's record goes further, a refund sent after activity dated
    later than it (or after a step that moved the member later, such as the daily job's
    downgrade): to the latest of those. The member's level as it stands already counts
    that activity; judged only up to the refund, the level a later purchase reached (with
    what was not refunded) would be taken away, or one a later review took away given
    back, though the history without the refunded part goes as the member's did."""
    return max([at, state.since, *(a.at for a in activities)])


_THRESHOLD = re.compile(
    r"\b(spend|points|purchases) \d+(?:\.\d+)? (?:reached|reaches|meets) (\d+(?:\.\d+)?)\b"
)


def recorded_threshold(reason: str, metric: str) -> Decimal | None:
    """The threshold a timeline entry's reason says the value reached or met
    (``spend 1100 reached 1000``, ``spend 1200 meets 1000``, ``refund: spend 1100
    reaches 1000 from 2026-01-10``); None: it says none (an assignment, a downgrade),
    or it is a threshold of another ``metric`` than the program's now (a spend of 1000
    is no points threshold)."""
    found = _THRESHOLD.search(reason)
    if found is None or found.group(1) != metric:
        return None
    return Decimal(found.group(2))


def _as_reached(policy: TierPolicy, tier: str, held: Decimal | None) -> TierPolicy:
    """``policy`` with ``tier``'s threshold lowered to ``held``, the one the member
    reached it at, when the file has raised it since (and the ladder stays in order)."""
    if held is None:
        return policy
    levels = list(policy.levels)
    rank = next((i for i, level in enumerate(levels) if level.id == tier), None)
    if rank is None or rank == 0 or held >= levels[rank].threshold:
        return policy
    if held <= levels[rank - 1].threshold:
        return policy
    levels[rank] = levels[rank].model_copy(update={"threshold": held})
    return policy.model_copy(update={"levels": levels})


_BEFORE_ANY = datetime.min.replace(tzinfo=UTC)
"""The ``since`` of the base level a history played again from the start begins on."""


def _refund_anchor(
    policy: TierPolicy,
    state: TierState,
    purchase_at: datetime,
    zone: ZoneInfo,
    assignments: Sequence[Assignment],
) -> TierState:
    """Where the member stood at a moment the refunded purchase cannot have changed.

    Every change that sets ``since`` (upgrade, downgrade, end of an assignment, a
    refund) also sets the next re-qualification from it, so a level reached before the
    purchase is known as it was at ``since``. A level reached at or after it may be the
    purchase's doing: the history is then played from the latest manual assignment
    (``assignments``, in time order), which set the level whatever came before it, or
    else from the base level.

    When the latest assignment's end is unknown (recorded before migration 0007 and
    replaced by an upgrade), the history is played from the base level, as before
    assignments were considered: played from it with a guessed end would hold or drop
    its tier at a date the operator never set, and an earlier assignment would ignore
    the level it set.
    """
    if state.since < purchase_at:
        base = policy.index(state.tier) == 0
        return TierState(
            state.tier, state.since, None if base else _next_review(policy, state.since, zone)
        )
    if assignments and assignments[-1].until is not None:
        last = assignments[-1]
        return TierState(last.tier, last.at, assigned_until=last.until)
    return TierState(policy.levels[0].id, _BEFORE_ANY)


def _replay(
    policy: TierPolicy,
    start: TierState,
    activities: Sequence[Activity],
    until: datetime,
    zone: ZoneInfo,
    assignments: Sequence[Assignment] = (),
) -> tuple[TierState, list[TierChange]]:
    """The tier history from ``start`` to ``until``: at each moment of activity, the
    re-qualification steps due by then, then the activity (:func:`on_activity`, only
    where it can upgrade or end a grace period); then the steps due by ``until``.
    ``start`` may be a manual assignment: it ends at its date (or at an upgrade)."""
    rank = {tier.id: i for i, tier in enumerate(policy.levels)}
    state, changes = start, []
    for moment, value in _values_after(policy, activities, start.since, until, zone):
        due = state.assigned_until or state.grace_until or state.review_at
        if due is not None and due <= moment:
            state, done = review(policy, state, activities, moment, zone, assignments)
            changes += done
        higher = rank[state.tier] + 1
        upgrades = higher < len(policy.levels) and value >= policy.levels[higher].threshold
        if upgrades or state.grace_until is not None:
            state, done = on_activity(policy, state, activities, moment, zone)
            changes += done
    state, done = review(policy, state, activities, until, zone, assignments)
    return state, changes + done


def _refund_entries(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    before: str,
    later: Sequence[TierChange],
    at: datetime,
    zone: ZoneInfo,
    through: datetime,
) -> list[TierChange]:
    """The timeline entries of a refund, dated ``at``, from the member's current level
    (the history played again up to ``through``).

    ``before`` is the level the history played again holds just before the purchase,
    ``later`` its changes from the purchase on. While the level taken back is pending,
    later upgrades are folded in (to it: kept from that moment; below it: the level the
    reversal goes to; above it, when a downgrade since the purchase left the member below
    what later activity reaches without it: that upgrade, from the current level); the
    first other step writes the reversal, then each step follows. The end of a manual
    assignment the member went through (dated at or before their level's ``since``) is
    where their level comes from, not the upgrade: it is written from the current
    level, without a reversal.
    """
    shown, target = state.tier, before
    pending = target != shown
    entries: list[TierChange] = []
    for step in later:
        if pending and step.kind is ChangeKind.upgrade:
            rank, held = policy.index(step.to_tier), policy.index(shown)
            if rank == held:
                entries.append(_kept_from(policy, state, activities, step.at, at, zone))
                pending = False
            elif rank > held:  # above a level a downgrade since the purchase left
                day = step.at.astimezone(zone).date()
                reason = f"refund: on {day}, {step.reason}"
                entries.append(TierChange(at, step.kind, shown, step.to_tier, step.value, reason))
                shown, pending = step.to_tier, False
            else:
                target = step.to_tier
            continue
        if pending and step.kind is ChangeKind.assignment_expired and step.at <= state.since:
            pending = False  # the member's level comes from this end (or later): no reversal
        if pending:
            # the value while the level was held without reason: up to this next step
            reversal = _reversal(policy, state, activities, target, at, zone, step.at, False)
            entries.append(reversal)
            shown, pending = target, False
        day = step.at.astimezone(zone).date()
        reason = f"refund: on {day}, {step.reason}"
        entries.append(TierChange(at, step.kind, shown, step.to_tier, step.value, reason))
        shown = step.to_tier
    if pending:
        entries.append(_reversal(policy, state, activities, target, at, zone, through, True))
    return entries


def _kept_from(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    since: datetime,
    at: datetime,
    zone: ZoneInfo,
) -> TierChange:
    """The level taken back is reached again by later activity from ``since``."""
    value = window_value(policy, activities, since, zone)
    threshold = policy.levels[policy.index(state.tier)].threshold
    day = since.astimezone(zone).date()
    reason = (
        f"refund: {policy.metric.value} {_figure(value)} reaches {_figure(threshold)} from {day}"
    )
    return TierChange(at, ChangeKind.requalified, state.tier, state.tier, value, reason)


def _reversal(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    target: str,
    at: datetime,
    zone: ZoneInfo,
    until: datetime,
    inclusive: bool,
) -> TierChange:
    """The level taken back, down to ``target`` (entry dated ``at``), with the highest
    value the member had from the upgrade (``state.since``) to ``until``: the end of the
    history played again (``inclusive``), or the next step it writes after the reversal
    (a later upgrade, a re-qualification; excluded: from that moment the value is that
    step's), so the value never reaches the threshold it says it no longer reaches."""
    best, best_at = window_value(policy, activities, state.since, zone), state.since
    for moment, moment_value in _values_after(policy, activities, state.since, until, zone):
        if moment == until and not inclusive:
            break
        if moment_value > best:
            best, best_at = moment_value, moment
    value = window_value(policy, activities, best_at, zone)
    threshold = policy.levels[policy.index(state.tier)].threshold
    reason = (
        f"refund: {policy.metric.value} {_figure(value)} no longer reaches {_figure(threshold)}"
    )
    return TierChange(at, ChangeKind.upgrade_reversed, state.tier, target, value, reason)


def _refund_without_step(
    policy: TierPolicy,
    state: TierState,
    replayed: TierState,
    activities: Sequence[Activity],
    at: datetime,
    zone: ZoneInfo,
    through: datetime,
) -> tuple[TierState, list[TierChange]]:
    """The same level, on other dates: the purchase ended a grace period that now goes
    on (``grace_started``), or it moved the next re-qualification (``requalified``);
    the entry dated ``at``, with the value at ``through``, the end of the history
    played again."""
    value = window_value(policy, activities, through, zone)
    threshold = policy.levels[policy.index(state.tier)].threshold
    metric = policy.metric.value
    if replayed.grace_until is not None:
        end = replayed.grace_until.astimezone(zone).date()
        reason = (
            f"refund: {metric} {_figure(value)} below {_figure(threshold)}; grace until {end} again"
        )
        kind = ChangeKind.grace_started
    elif (replayed.review_at, replayed.grace_until) != (state.review_at, state.grace_until):
        due = "none" if replayed.review_at is None else replayed.review_at.astimezone(zone).date()
        reason = f"refund: {metric} {_figure(value)}; next re-qualification {due}"
        kind = ChangeKind.requalified
    else:
        return state, []
    return replayed, [TierChange(at, kind, state.tier, replayed.tier, value, reason)]


def _values_after(
    policy: TierPolicy,
    activities: Sequence[Activity],
    after: datetime,
    until: datetime,
    zone: ZoneInfo,
    *,
    from_after: bool = False,
) -> list[tuple[datetime, Decimal]]:
    """The qualifying value at each moment of activity in ``(after, until]`` (``[after,
    until]`` with ``from_after``), in time order, each over its own window, an event's
    (as :func:`window_value` counts it, in one pass: comparable values, not for
    display, whose exponent may differ)."""
    timed = sorted((a.at, _measure(policy, a)) for a in activities if a.at <= until)
    times = [t for t, _ in timed]
    totals = list(accumulate((v for _, v in timed), initial=Decimal(0)))
    rolling = policy.window is WindowKind.rolling
    values: list[tuple[datetime, Decimal]] = []
    for moment in sorted({t for t in times if after < t or (from_after and after == t)}):
        start = window_start(policy, moment, zone)
        first = 0
        if start is not None:
            first = bisect_right(times, start) if rolling else bisect_left(times, start)
        values.append((moment, totals[bisect_right(times, moment)] - totals[first]))
    return values


def due_at(state: TierState) -> datetime | None:
    """When the member's next step falls due (see :func:`review`): the end of a manual
    assignment, else of a grace period, else the next re-qualification; None: none."""
    return state.assigned_until or state.grace_until or state.review_at


def next_review(state: TierState) -> datetime | None:
    """The member's next re-qualification as a reader sees it: during a grace period, its
    end (where the level is judged again: kept if the value reached the threshold during
    it, else moved down), not ``review_at``, the date it started from, now past; none
    during a manual assignment (its end decides) or on the base level."""
    if state.assigned_until is not None:
        return None
    return state.grace_until or state.review_at


def review(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    as_of: datetime,
    zone: ZoneInfo,
    assignments: Sequence[Assignment] = (),
) -> tuple[TierState, list[TierChange]]:
    """Apply every re-qualification step due at or before ``as_of``, in date order.

    A step due at the very moment of an activity comes first, judged on the window just
    before it (``window_value(..., step=True)``: a grace period ending at ``t`` does not
    include ``t``), and the activity at ``t`` comes after it. After each step, the
    activity already recorded from it to the next one (at its instant included) does
    what it did or would have done when it happened
    (:func:`on_activity`: ``requalified`` during a grace period, at the moment the value
    reached the threshold, or an upgrade), so a review run late writes what a timely one
    and the member's events would have written. A review that starts from a grace
    period already begun (an earlier run, or a step applied before an event) looks at the
    activity inside it first, from its start (the re-qualification date it was started
    at): a run split in two writes what one run writes. A member on a level the program
    no longer has is moved at ``as_of`` first (:func:`leave_retired`). ``assignments``:
    the member's manual assignments (:class:`Assignment`), which the end of one in
    force looks back on (:func:`_assignment_expired`; none given: none before it).

    The end of an assignment plays the member's whole history again: ``activities``
    must be all of it, not a window's."""
    changes: list[TierChange] = []
    if retired(policy, state):
        state, changes = leave_retired(policy, state, activities, as_of, zone)
    if state.grace_until is not None and state.review_at is not None:
        state, changes = _activity_after(policy, state, activities, state.review_at, as_of, zone)
    while True:
        step = _next_step(policy, state, activities, as_of, zone, assignments)
        if step is None:
            return state, changes
        state, change = step
        changes.append(change)
        state, done = _activity_after(policy, state, activities, change.at, as_of, zone)
        changes += done


def _activity_after(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    after: datetime,
    as_of: datetime,
    zone: ZoneInfo,
) -> tuple[TierState, list[TierChange]]:
    """What the activity in ``[after, as_of]`` does to ``state`` before its next step
    falls due: each moment that upgrades the member or ends a grace period, in time
    order, as :func:`on_activity` does it when the activity happens. ``after`` is the
    date of a step, which judged the window just before it: an activity at that very
    instant comes after the step, and is looked at here."""
    changes: list[TierChange] = []
    moments = _values_after(policy, activities, after, as_of, zone, from_after=True)
    for moment, value in moments:
        due = due_at(state)
        if due is not None and due <= moment:
            break  # that step first (the caller's next one), judged at its own date
        current, reached = policy.index(state.tier), qualified_level(policy, value)
        if reached > current or (state.grace_until is not None and reached >= current):
            state, done = on_activity(policy, state, activities, moment, zone)
            changes += done
    return state, changes


def assign(
    policy: TierPolicy,
    state: TierState,
    tier: str,
    at: datetime,
    until: datetime,
    reason: str,
    *,
    activities: Sequence[Activity],
    zone: ZoneInfo,
) -> tuple[TierState, TierChange]:
    """Put a member on ``tier`` by hand until ``until`` (no review before then).

    The entry records the member's qualifying value at ``at`` over its window, as any
    other entry does: what they had when the operator set the level by hand."""
    policy.index(tier)  # raises ValueError for an unknown tier
    if until <= at:
        raise ValueError("a manual assignment must end after it starts")
    value = window_value(policy, activities, at, zone)
    new = TierState(tier, at, review_at=None, grace_until=None, assigned_until=until)
    return new, TierChange(at, ChangeKind.assigned, state.tier, tier, value, reason)


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
    assignments: Sequence[Assignment] = (),
) -> tuple[TierState, TierChange] | None:
    if state.assigned_until is not None:
        if as_of < state.assigned_until:
            return None
        return _assignment_expired(policy, state, activities, zone, assignments)
    due = state.grace_until or state.review_at
    if due is None or as_of < due:
        return None
    value = window_value(policy, activities, due, zone, step=True)
    current = policy.index(state.tier)
    threshold = policy.levels[current].threshold
    if value >= threshold:
        new = TierState(state.tier, state.since, _next_review(policy, due, zone))
        reason = f"{policy.metric.value} {_figure(value)} meets {_figure(threshold)}"
        return new, TierChange(due, ChangeKind.requalified, state.tier, state.tier, value, reason)
    grace = within(lambda: add_months(due, policy.grace_months, zone))
    if state.grace_until is None and policy.grace_months > 0 and grace is not None:
        new = replace(state, grace_until=grace)
        reason = (f"{policy.metric.value} {_figure(value)} below {_figure(threshold)}; "
                  f"grace until {grace.date()}")  # fmt: skip
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
    reason = (
        f"{policy.metric.value} {_figure(value)} below {_figure(threshold)} at re-qualification"
    )
    change = TierChange(at, ChangeKind.downgrade, state.tier, tier.id, value, reason)
    return TierState(tier.id, at, review_at), change


def _assignment_expired(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    zone: ZoneInfo,
    assignments: Sequence[Assignment] = (),
) -> tuple[TierState, TierChange]:
    """The end of a manual assignment: the member takes the level their value qualifies
    for, from the end (its next re-qualification counted from it), unless they would
    have held a higher one without the assignment: then that level, with its dates, as
    the history played again without the assignment up to its end gives it
    (:func:`_without_assignment`): a grace period in course goes on to its own end, a
    re-qualification missed meanwhile moves them down as any downgrade does (one level
    at a time with ``one_level``, after the grace period). The entry, dated at the end,
    records the value over the window just before it."""
    at = state.assigned_until
    assert at is not None
    value = window_value(policy, activities, at, zone, step=True)
    metric = policy.metric.value
    qualified = policy.levels[qualified_level(policy, value)].id
    new = _without_assignment(policy, state, activities, zone, assignments)
    if new.tier == qualified and new.grace_until is None and new.assigned_until is None:
        review_at = None if qualified == policy.levels[0].id else _next_review(policy, at, zone)
        new = TierState(qualified, at, review_at)
        reason = f"manual assignment ended; {metric} {_figure(value)} qualifies for {qualified}"
    else:
        reason = f"manual assignment ended; {metric} {_figure(value)}; {new.tier} as without it"
        if new.grace_until is not None:
            reason += f", grace until {new.grace_until.astimezone(zone).date()}"
    change = TierChange(at, ChangeKind.assignment_expired, state.tier, new.tier, value, reason)
    return new, change


def _without_assignment(
    policy: TierPolicy,
    state: TierState,
    activities: Sequence[Activity],
    zone: ZoneInfo,
    assignments: Sequence[Assignment],
) -> TierState:
    """Where the member stands at the end of their assignment (``state``, assigned at
    its ``since`` until its ``assigned_until``) had it never been made: the history
    played again from the latest earlier assignment (``assignments``, those dated before
    it; the member held its tier whatever came before, until its own end or, when that
    is later, until ``state.since``: an assignment replaces the one before it, which
    a replay without the later one does not bring back), or from the
    base level before any activity, with the activity dated before the end, through
    the steps due by the end. The level's dates are those that history gives; the base
    level never left dates from the end."""
    end = state.assigned_until
    assert end is not None
    earlier = sorted((a for a in assignments if a.at < state.since), key=lambda a: a.at)
    start = TierState(policy.levels[0].id, _BEFORE_ANY)
    last = earlier[-1] if earlier else None
    if last is not None and last.until is not None:
        # the assignment before it ended where this one started: it replaced it
        start = TierState(last.tier, last.at, assigned_until=min(last.until, state.since))
        if retired(policy, start):
            start, _ = leave_retired(policy, start, activities, start.since, zone)
    before = [a for a in activities if a.at < end]
    replayed, _ = _replay(policy, start, before, end, zone, earlier[:-1])
    if replayed.since == _BEFORE_ANY:
        replayed = replace(replayed, since=end)
    return replayed
