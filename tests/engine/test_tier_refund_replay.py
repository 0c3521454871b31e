"""A refund leaves the member where a history without the refunded part would have.

For any ladder policy and any activity, the tier state after :func:`on_refund` is the
state the same events, the same daily reviews and the refunded purchase counting for
nothing give, and the refund's entries lead, one after the other, from the level the
member held to the one they hold after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from fidelite.engine.tiers import Activity, TierState, initial_state, on_activity, on_refund, review
from fidelite.program.tier import TierPolicy

PARIS = ZoneInfo("Europe/Paris")
LEVELS = [
    {"id": "bronze", "name": "Bronze", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 300},
    {"id": "gold", "name": "Gold", "threshold": 1000},
]
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
# Days since the previous activity and its spend.
histories = st.lists(
    st.tuples(st.integers(1, 120), st.sampled_from([0, 50, 200, 400, 900])),
    min_size=1,
    max_size=20,
)


def activities(history: Sequence[tuple[int, int]]) -> list[Activity]:
    found, at = [], START
    for days, spend in history:
        at += timedelta(days=days)
        found.append(Activity(at, spend=Decimal(spend)))
    return found


def lived(policy: TierPolicy, found: Sequence[Activity], end: datetime) -> TierState:
    """Each event in turn (the daily job run once it is recorded), then the job at ``end``."""
    state, seen = initial_state(policy, START), []
    for activity in found:
        seen.append(activity)
        state, _ = review(policy, state, seen, activity.at, PARIS)
        state, _ = on_activity(policy, state, seen, activity.at, PARIS)
    state, _ = review(policy, state, seen, end, PARIS)
    return state


@settings(max_examples=400, deadline=None)
@given(policy=policies, history=histories, pick=st.integers(0, 19), late=st.integers(0, 400))
def test_refund_leaves_the_member_where_a_history_without_it_would(
    policy: TierPolicy, history: list[tuple[int, int]], pick: int, late: int
) -> None:
    found = activities(history)
    end = found[-1].at + timedelta(days=late)
    refunded = pick % len(found)
    held = lived(policy, found, end)
    without = [replace(a, spend=Decimal(0)) if i == refunded else a for i, a in enumerate(found)]
    expected = lived(policy, without, end)
    state, changes = on_refund(policy, held, without, found[refunded].at, end, PARIS,
                               enrolled=START)  # fmt: skip
    assert (state.tier, state.review_at, state.grace_until) == (
        expected.tier, expected.review_at, expected.grace_until,
    )  # fmt: skip
    if changes:  # the base level too: dated from the enrolment, or its own downgrade
        assert state.since == expected.since
    levels = [held.tier, *(c.to_tier for c in changes)]
    assert [c.from_tier for c in changes] == levels[:-1]
    assert levels[-1] == state.tier
    assert all(c.at == end for c in changes)
    if not changes:
        assert state == held


def test_refund_of_a_purchase_that_counted_for_nothing_changes_nothing() -> None:
    rules = TierPolicy.model_validate({"grace_months": 1, "levels": LEVELS})
    found = activities([(10, 900), (30, 400), (400, 0), (20, 200)])
    end = found[-1].at + timedelta(days=30)
    held = lived(rules, found, end)
    assert on_refund(rules, held, found, found[2].at, end, PARIS, enrolled=START) == (held, [])


def test_refund_after_a_downgrade_upgrades_to_what_later_activity_reached() -> None:
    """The refunded purchase made gold; gold's re-qualification then downgraded to silver.
    Without it, a purchase the day after reached gold on its own, whose re-qualification
    is not yet due: the refund writes that upgrade from silver, not a silver kept."""
    rules = TierPolicy.model_validate({"window_months": 3, "requalify_months": 12,
                                       "downgrade": "one_level", "levels": LEVELS})  # fmt: skip
    found = activities([(1, 200), (1, 900), (1, 900)])  # 2, 3 and 4 January 2024
    end = datetime(2025, 1, 3, tzinfo=PARIS)
    held = lived(rules, found, end)
    assert (held.tier, held.since) == ("silver", end)  # gold from 3 January, one level down
    without = [found[0], replace(found[1], spend=Decimal(0)), found[2]]
    state, changes = on_refund(rules, held, without, found[1].at, end, PARIS, enrolled=START)
    gold_at = datetime(2024, 1, 4, tzinfo=PARIS)
    assert state == TierState("gold", gold_at, datetime(2025, 1, 4, tzinfo=PARIS))
    assert [(c.at, c.kind.value, c.from_tier, c.to_tier, c.value, c.reason) for c in changes] == [
        (end, "upgrade", "silver", "gold", Decimal(1100),
         "refund: on 2024-01-04, spend 1100 reached 1000"),
    ]  # fmt: skip
