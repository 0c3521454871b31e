"""A rolling tier window at month ends and clock changes: the purchase that earned a
level has left the window at the review ``window_months`` later, even when adding the
months clamped the review's day (29 February, 31 August) or its local time was
repeated (the fall-back night): an activity ``window_months`` old, as the review date
counts months, is out of the window (docs/program.md, Tiers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fidelite.engine.calendar import add_months, months_back
from fidelite.engine.tiers import (
    Activity,
    TierChange,
    TierState,
    _values_after,
    initial_state,
    on_activity,
    review,
    window_value,
)
from fidelite.program.tier import TierPolicy

PARIS = ZoneInfo("Europe/Paris")


def policy(window: int, requalify: int) -> TierPolicy:
    return TierPolicy.model_validate({
        "metric": "spend", "window": "rolling", "window_months": window,
        "requalify_months": requalify, "grace_months": 0, "downgrade": "one_level",
        "levels": [{"id": "bronze", "name": "Bronze", "threshold": 0},
                   {"id": "silver", "name": "Silver", "threshold": 300}],
    })  # fmt: skip


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def entries(changes: list[TierChange]) -> list[tuple[str, str, str, str, Decimal, str]]:
    return [(c.at.astimezone(PARIS).isoformat(), c.kind.value, c.from_tier, c.to_tier,
             c.value, c.reason) for c in changes]  # fmt: skip


def stored(state: TierState) -> TierState:
    """``state`` as the database gives it back: its dates in UTC (a local time's fold,
    the second 02:30 of a fall-back night, is not kept)."""
    return replace(state, since=state.since.astimezone(UTC),
                   review_at=state.review_at and state.review_at.astimezone(UTC))  # fmt: skip


def walk(
    rules: TierPolicy, purchases: list[tuple[str, str]], as_of: str
) -> list[tuple[str, str, str, str, Decimal, str]]:
    """Each purchase as it arrives (an upgrade at once), then the reviews due by ``as_of``."""
    state = initial_state(rules, at("2024-01-01T00:00:00+01:00"))
    activities: list[Activity] = []
    timeline: list[TierChange] = []
    for when, amount in purchases:
        state, done = review(rules, state, activities, at(when), PARIS)
        timeline += done
        activities.append(Activity(at(when), spend=Decimal(amount), purchases=1))
        state, done = on_activity(rules, state, activities, at(when), PARIS)
        state, timeline = stored(state), timeline + done
    state, done = review(rules, state, activities, at(as_of), PARIS)
    return entries(timeline + done)


@pytest.mark.parametrize(
    ("window", "bought", "due"),
    [
        (12, "2024-02-29T10:00:00+01:00", "2025-02-28T10:00:00+01:00"),  # leap day, clamped
        (6, "2024-08-31T10:00:00+02:00", "2025-02-28T10:00:00+01:00"),  # 31st, clamped
        (12, "2025-10-26T02:30:00+01:00", "2026-10-26T02:30:00+01:00"),  # repeated hour
    ],
    ids=["leap-day", "august-31", "fall-back"],
)
def test_the_purchase_that_earned_a_level_does_not_requalify_it(
    window: int, bought: str, due: str
) -> None:
    """QA repro: 400 on the day, silver at 300, no grace. At the review the 400 is
    ``window`` months old: spend 0, down to bronze (it was ``requalified`` with spend
    400, the window starting a day, three days or an hour before the purchase)."""
    assert walk(policy(window, window), [(bought, "400")], "2027-06-01T00:00:00+02:00") == [
        (at(bought).isoformat(), "upgrade", "bronze", "silver", Decimal("400.0000"),
         "spend 400 reached 300"),
        (due, "downgrade", "silver", "bronze", Decimal("0.0000"),
         "spend 0 below 300 at re-qualification"),
    ]  # fmt: skip


def test_a_later_purchase_still_counts_at_that_review() -> None:
    """The window starts right at the purchase that earned the level: 300 bought the
    next morning is inside it at the clamped review and keeps the level."""
    bought = [("2024-02-29T10:00:00+01:00", "400"), ("2024-03-01T09:00:00+01:00", "300")]
    assert walk(policy(12, 12), bought, "2025-06-01T00:00:00+02:00") == [
        ("2024-02-29T10:00:00+01:00", "upgrade", "bronze", "silver", Decimal("400.0000"),
         "spend 400 reached 300"),
        ("2025-02-28T10:00:00+01:00", "requalified", "silver", "silver", Decimal("300.0000"),
         "spend 300 meets 300"),
    ]  # fmt: skip


def test_a_month_back_from_a_day_february_lacks_starts_at_its_end() -> None:
    """On 30 March a one-month window has no 30 February to start from: all of February
    has left it (28 February 23:00 is more than a month old, as months are added), and
    1 March counts; the one-pass values say the same."""
    rules = policy(1, 1)
    activities = [
        Activity(at("2025-02-28T23:00:00+01:00"), spend=Decimal(500), purchases=1),
        Activity(at("2025-03-01T00:00:00+01:00"), spend=Decimal(20), purchases=1),
        Activity(at("2025-03-30T10:00:00+02:00"), spend=Decimal(1), purchases=1),
    ]
    assert add_months(activities[0].at, 1, PARIS) < activities[2].at
    assert window_value(rules, activities, at("2025-03-30T10:00:00+02:00"), PARIS) == 21
    assert months_back(at("2025-03-30T10:00:00+02:00"), 1, PARIS) == at(
        "2025-02-28T23:59:59.999999+01:00"
    )
    values = _values_after(rules, activities, at("2025-03-01T00:00:00+01:00"),
                           at("2025-04-01T00:00:00+02:00"), PARIS)  # fmt: skip
    assert values == [(at("2025-03-30T10:00:00+02:00"), Decimal(21))]


def test_an_activity_leaves_the_window_once_it_is_window_months_old() -> None:
    """For any activity, the window ending ``window_months`` later (months added as the
    review date adds them) starts at or after it, and never goes back as time moves on
    (checked every 7 hours 13 minutes over two years, clock changes included)."""
    moment, end = at("2023-12-01T00:00:00+01:00"), at("2026-01-01T00:00:00+01:00")
    previous: dict[int, datetime] = {}
    while moment < end:
        for months in (1, 6, 12):
            assert months_back(add_months(moment, months, PARIS), months, PARIS) >= moment
            start = months_back(moment, months, PARIS)
            assert start >= previous.get(months, start), (moment, months)
            previous[months] = start
        moment += timedelta(hours=7, minutes=13)
