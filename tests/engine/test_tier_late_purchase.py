"""A purchase sent after tier steps dated later than it (older history imported after
the daily job ran): the member ends on the level, with the dates, that the same
purchases sent in date order give. Before, the late purchase was applied at its own
date over the state the later steps left: it ended a grace period that began after it
(``requalified`` at the purchase's date, the next review a year from it, too early)."""

from __future__ import annotations

from collections.abc import Sequence
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
    last_step,
    on_activity,
    on_late_activity,
    review,
)
from fidelite.program.tier import TierPolicy

PARIS = ZoneInfo("Europe/Paris")
LEVELS = [
    {"id": "bronze", "name": "Bronze", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 300},
    {"id": "gold", "name": "Gold", "threshold": 1000},
]
START = datetime(2024, 1, 1, tzinfo=PARIS)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=PARIS)


def lived(
    policy: TierPolicy, found: Sequence[Activity], end: datetime
) -> tuple[TierState, list[TierChange]]:
    """Each activity in date order (the steps due by then first), then the job at ``end``."""
    state, seen, steps = initial_state(policy, START), [], []
    for activity in sorted(found, key=lambda a: a.at):
        seen.append(activity)
        state, done = review(policy, state, seen, activity.at, PARIS)
        steps += done
        state, done = on_activity(policy, state, seen, activity.at, PARIS)
        steps += done
    state, done = review(policy, state, seen, end, PARIS)
    return state, steps + done


def late(
    policy: TierPolicy, found: Sequence[Activity], pick: int, end: datetime
) -> tuple[TierState, list[TierChange]]:
    """The others in date order and the job at ``end``; then activity ``pick`` arrives."""
    others = [a for i, a in enumerate(found) if i != pick]
    state, steps = lived(policy, others, end)
    everything = sorted(found, key=lambda a: a.at)
    through = max([end, state.since, *(a.at for a in everything)])
    new, added = on_late_activity(policy, state, everything, found[pick].at, through, PARIS,
                                  enrolled=START)  # fmt: skip
    return new, steps + added


def test_a_late_purchase_before_a_grace_period_does_not_end_it_at_its_own_date() -> None:
    """Silver from 350 on 2024-03-01 (grace 3 months). The job on 2025-06-01 started a
    grace period at 2025-03-01 (nothing in the window); then 300 dated 2025-02-15
    arrives. In date order the 2025-03-01 review finds 300 and keeps silver, next review
    2026-03-01. It was 'requalified' on 2025-02-15, next review 2026-02-15."""
    policy = TierPolicy.model_validate({"grace_months": 3, "levels": LEVELS})
    found = [Activity(at("2024-03-01"), spend=Decimal(350), purchases=1),
             Activity(at("2025-02-15"), spend=Decimal(300), purchases=1)]  # fmt: skip
    job = datetime(2025, 6, 1, tzinfo=PARIS)
    held, _ = lived(policy, found[:1], job)
    assert held.grace_until == at("2025-06-01")
    assert last_step(policy, held, PARIS, enrolled=START) == at("2025-03-01")
    assert last_step(policy, initial_state(policy, START), PARIS, enrolled=START) is None
    state, added = on_late_activity(policy, held, found, found[1].at, job, PARIS,
                                    enrolled=START)  # fmt: skip
    assert state == TierState("silver", at("2024-03-01"), review_at=at("2026-03-01"))
    assert [(c.at, c.kind.value, c.from_tier, c.to_tier, c.value, c.reason) for c in added] == [
        (at("2025-03-01"), "requalified", "silver", "silver", Decimal("300.0000"),
         "spend 300 meets 300"),
    ]  # fmt: skip
    assert lived(policy, found, job)[0] == state


policies = st.builds(
    lambda window, grace, downgrade: TierPolicy.model_validate(
        {**window, "grace_months": grace, "downgrade": downgrade, "levels": LEVELS}
    ),
    st.one_of(
        st.just({"window": "calendar_year"}),
        st.fixed_dictionaries(
            {
                "window_months": st.sampled_from([3, 12]),
                "requalify_months": st.sampled_from([6, 12]),
            }
        ),
    ),
    st.sampled_from([0, 1, 3]),
    st.sampled_from(["one_level", "to_qualified"]),
)
histories = st.lists(
    st.tuples(st.integers(1, 200), st.sampled_from([50, 200, 400, 900])),
    min_size=2,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(policy=policies, history=histories, pick=st.integers(0, 11),
       after=st.integers(0, 400))  # fmt: skip
def test_a_late_purchase_ends_where_the_purchases_in_date_order_do(
    policy: TierPolicy, history: list[tuple[int, int]], pick: int, after: int
) -> None:
    """Any purchase sent last, after the others and the daily job at any later date: the
    level and its dates are those of the purchases in date order and the same job."""
    found, moment = [], START
    for days, spend in history:
        moment += timedelta(days=days)
        found.append(Activity(moment, spend=Decimal(spend), purchases=1))
    pick %= len(found)
    end = max(a.at for a in found) + timedelta(days=after)
    expected, _ = lived(policy, found, end)
    state, _ = late(policy, found, pick, end)
    assert (state.tier, state.since, state.review_at, state.grace_until) == (
        expected.tier, expected.since, expected.review_at, expected.grace_until,
    )  # fmt: skip
