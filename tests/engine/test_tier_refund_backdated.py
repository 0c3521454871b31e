"""A refund dated before activity (or a step) already on the member's record.

A refund sent late may be dated before a purchase recorded earlier, or before the daily
job's re-qualification of the member: the tier is judged on the member's whole record
without what was refunded, as if the refund had been sent in date order, never only up
to the refund's date (which took away a level a later purchase reached, or gave back one
a later review took away).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from fidelite.engine.tiers import (
    Activity,
    TierChange,
    TierState,
    initial_state,
    on_activity,
    on_refund,
    review,
)
from fidelite.program.tier import TierPolicy

PARIS = ZoneInfo("Europe/Paris")
JOINED = datetime(2025, 1, 1, tzinfo=PARIS)
LEVELS = [
    {"id": "bronze", "name": "Bronze", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 300},
    {"id": "gold", "name": "Gold", "threshold": 1000},
]
RULES = TierPolicy.model_validate({"levels": LEVELS})  # spend, rolling 12 months, no grace


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=PARIS)


def lived(
    policy: TierPolicy, found: Sequence[Activity], end: datetime, start: datetime = JOINED
) -> TierState:
    """Each activity in turn (the steps due by then applied first), then the job at ``end``."""
    state, seen = initial_state(policy, start), []
    for activity in sorted(found, key=lambda a: a.at):
        seen.append(activity)
        state, _ = review(policy, state, seen, activity.at, PARIS)
        state, _ = on_activity(policy, state, seen, activity.at, PARIS)
    state, _ = review(policy, state, seen, end, PARIS)
    return state


def shown(changes: Sequence[TierChange]) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (c.at.date().isoformat(), c.kind.value, c.from_tier, c.to_tier,
         f"{c.value.normalize():f}", c.reason)
        for c in changes
    ]  # fmt: skip


Y1 = Activity(at("2025-10-01"), spend=Decimal(200), purchases=1)
Y2 = Activity(at("2025-10-10"), spend=Decimal(200), purchases=1)


def test_a_partial_refund_dated_before_a_later_upgrade_keeps_the_level() -> None:
    """y1 200 on 10-01, y2 200 on 10-10: silver (400). 50 of y1 refunded, dated 10-05 and
    sent after y2: 350 at the 10-10 upgrade still reaches 300, nothing changes."""
    held = lived(RULES, [Y1, Y2], Y2.at)
    assert held == TierState("silver", at("2025-10-10"), review_at=at("2026-10-10"))
    without = [replace(Y1, spend=Decimal(150)), Y2]
    assert on_refund(RULES, held, without, Y1.at, at("2025-10-05"), PARIS,
                     enrolled=JOINED) == (held, [])  # fmt: skip
    # Dated after the upgrade: the same.
    assert on_refund(RULES, held, without, Y1.at, at("2025-10-12"), PARIS,
                     enrolled=JOINED) == (held, [])  # fmt: skip


def test_a_refund_dated_before_a_later_upgrade_that_no_longer_reaches_it_undoes_it() -> None:
    """150 of y1 refunded, dated 10-05: 250 at the 10-10 upgrade. The level is undone, the
    entry dated at the upgrade it undoes (not before it) with the value without the
    refund, and the member is bronze since they joined."""
    held = lived(RULES, [Y1, Y2], Y2.at)
    without = [replace(Y1, spend=Decimal(50)), Y2]
    state, changes = on_refund(RULES, held, without, Y1.at, at("2025-10-05"), PARIS,
                               enrolled=JOINED)  # fmt: skip
    assert shown(changes) == [
        ("2025-10-10", "upgrade_reversed", "silver", "bronze", "250",
         "refund: spend 250 no longer reaches 300"),
    ]  # fmt: skip
    assert state == TierState("bronze", JOINED, review_at=None)


def test_a_refund_dated_before_the_daily_jobs_downgrade_gives_no_level_back() -> None:
    """Silver from 400 on 2025-01-10; the job's review on 2026-01-10 finds 50 and moves the
    member down. A refund of the 50, dated 2026-01-05 and sent after the job, leaves the
    review as it went: bronze from 2026-01-10. (It gave silver back, as an
    ``upgrade_reversed`` from bronze to silver, 'spend 0 no longer reaches 0'.)"""
    found = [
        Activity(at("2025-01-10"), spend=Decimal(400), purchases=1),
        Activity(at("2025-06-01"), spend=Decimal(50), purchases=1),
    ]
    held = lived(RULES, found, at("2026-01-11"))
    assert held == TierState("bronze", at("2026-01-10"), review_at=None)
    without = [found[0], replace(found[1], spend=Decimal(0), purchases=0)]
    assert on_refund(RULES, held, without, found[1].at, at("2026-01-05"), PARIS,
                     enrolled=JOINED) == (held, [])  # fmt: skip


START = datetime(2024, 1, 1, tzinfo=PARIS)
windows = st.one_of(
    st.just({"window": "calendar_year"}),
    st.fixed_dictionaries(
        {"window_months": st.sampled_from([3, 12]), "requalify_months": st.sampled_from([6, 12])}
    ),
)
policies = st.builds(
    lambda window, grace, downgrade: TierPolicy.model_validate(
        {**window, "grace_months": grace, "downgrade": downgrade, "levels": LEVELS}
    ),
    windows,
    st.sampled_from([0, 1, 3]),
    st.sampled_from(["one_level", "to_qualified"]),
)
histories = st.lists(
    st.tuples(st.integers(1, 120), st.sampled_from([0, 50, 200, 400, 900])),
    min_size=2,
    max_size=15,
)


@settings(max_examples=400, deadline=None)
@given(policy=policies, history=histories, pick=st.integers(0, 14), late=st.integers(0, 10_000),
       part=st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.25")]))  # fmt: skip
def test_a_refund_sent_after_later_activity_ends_where_one_sent_in_date_order_would(
    policy: TierPolicy,
    history: list[tuple[int, int]],
    pick: int,
    late: int,
    part: Decimal,
) -> None:
    """A refund dated anywhere from its purchase to the member's last activity, sent after
    that activity, leaves the member on the level, with the dates, that the same events
    with the refunded part left out give (as the refund sent at its date would have)."""
    found, moment = [], START
    for days, spend in history:
        moment += timedelta(days=days)
        found.append(Activity(moment, spend=Decimal(spend), purchases=1))
    refunded = pick % len(found)
    last = found[-1].at
    span = last - found[refunded].at
    dated = found[refunded].at + span * (late / 10_000)
    held = lived(policy, found, last, START)
    left = found[refunded].spend * (1 - part)
    without = [replace(a, spend=left) if i == refunded else a for i, a in enumerate(found)]
    expected = lived(policy, without, last, START)
    state, changes = on_refund(policy, held, without, found[refunded].at, dated, PARIS,
                               enrolled=START)  # fmt: skip
    assert (state.tier, state.review_at, state.grace_until) == (
        expected.tier, expected.review_at, expected.grace_until,
    )  # fmt: skip
    if changes:
        assert state.since == expected.since
    else:
        assert state == held
    levels = [held.tier, *(c.to_tier for c in changes)]
    assert [c.from_tier for c in changes] == levels[:-1]
    # dated at the refund, or at the level's start when the refund is dated before it
    assert all(c.at == max(dated, held.since) for c in changes)


def test_an_undone_upgrade_gives_the_value_it_had_until_the_next_step() -> None:
    """Silver from 400 on 2025-01-10 (reviews every 6 months), gold from p2's 700 on
    2025-03-01, 800 more on 2025-10-01. p2 refunded on 2025-12-01: without it silver was
    kept at its 2025-07-10 review (400), and gold reached on 2025-10-01 (1200). The
    reversal says the 400 the member had until that review, not the 1200 of the later
    upgrade, which does reach 1000 ('spend 1200 no longer reaches 1000')."""
    rules = TierPolicy.model_validate({"window_months": 12, "requalify_months": 6,
                                       "levels": LEVELS})  # fmt: skip
    found = [
        Activity(at("2025-01-10"), spend=Decimal(400), purchases=1),
        Activity(at("2025-03-01"), spend=Decimal(700), purchases=1),
        Activity(at("2025-10-01"), spend=Decimal(800), purchases=1),
    ]
    held = lived(rules, found, at("2025-12-01"))
    assert held == TierState("gold", at("2025-03-01"), review_at=at("2026-03-01"))
    without = [found[0], replace(found[1], spend=Decimal(0), purchases=0), found[2]]
    state, changes = on_refund(rules, held, without, found[1].at, at("2025-12-01"), PARIS,
                               enrolled=JOINED)  # fmt: skip
    assert shown(changes) == [
        ("2025-12-01", "upgrade_reversed", "gold", "silver", "400",
         "refund: spend 400 no longer reaches 1000"),
        ("2025-12-01", "requalified", "silver", "silver", "400",
         "refund: on 2025-07-10, spend 400 meets 300"),
        ("2025-12-01", "upgrade", "silver", "gold", "1200",
         "refund: on 2025-10-01, spend 1200 reached 1000"),
    ]  # fmt: skip
    assert state == TierState("gold", at("2025-10-01"), review_at=at("2026-04-01"))
