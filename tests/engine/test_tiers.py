"""Tier movements across windows: immediate upgrades, grace, one level at a time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from fidelite.engine.tiers import (
    Activity,
    TierChange,
    TierState,
    _values_after,
    assign,
    initial_state,
    on_activity,
    review,
    window_value,
)
from fidelite.program.tier import TierPolicy

PARIS = ZoneInfo("Europe/Paris")
LEVELS = [
    {"id": "bronze", "name": "Bronze", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 300},
    {"id": "gold", "name": "Gold", "threshold": 1000},
]


def policy(**fields: object) -> TierPolicy:
    return TierPolicy.model_validate({"levels": LEVELS, **fields})


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=PARIS)


def spend(day: str, amount: str) -> Activity:
    return Activity(at(day), spend=Decimal(amount), purchases=1)


def entry(change: TierChange) -> tuple[str, str, str, str, str]:
    return (
        change.at.date().isoformat(),
        change.kind.value,
        change.from_tier,
        change.to_tier,
        f"{change.value.normalize():f}",  # four places (asserted apart): as a number
    )


def test_tier_walk_up_and_down_with_grace() -> None:
    rules = policy(grace_months=3)
    activities: list[Activity] = []
    timeline: list[TierChange] = []
    state = initial_state(rules, at("2025-01-10"))

    def buy(day: str, amount: str) -> None:
        nonlocal state
        activities.append(spend(day, amount))
        state, changes = on_activity(rules, state, activities, at(day), PARIS)
        timeline.extend(changes)

    def run_review(day: str) -> None:
        nonlocal state
        state, changes = review(rules, state, activities, at(day), PARIS)
        timeline.extend(changes)

    buy("2025-02-01", "400")  # 400 >= 300: silver at once
    buy("2025-06-10", "700")  # 1100 >= 1000: gold at once, review 2026-06-10
    buy("2025-12-01", "100")
    run_review("2026-06-09")  # not due yet: nothing
    assert state.tier == "gold" and state.review_at == at("2026-06-10")
    # Window (2025-06-10, 2026-06-10]: the 700 is exactly 12 months old and out: 100.
    run_review("2026-06-10")
    assert state.grace_until == at("2026-09-10")
    buy("2026-07-01", "150")  # 100 + 150 = 250: not enough to end the grace period
    run_review("2026-09-10")  # 250 < 1000: down ONE level, to silver (not bronze)
    buy("2026-10-01", "100")  # 350 qualifies for silver, nothing higher: no change
    run_review("2027-09-10")  # window (2026-09-10, 2027-09-10]: 100 < 300: grace
    buy("2027-11-20", "300")  # 300 >= 300 during grace: re-qualified, review 2028-11-20
    buy("2028-05-05", "200")
    buy("2028-08-08", "150")
    run_review("2028-11-20")  # window (2027-11-20, 2028-11-20]: 350: re-qualified
    run_review("2030-03-01")  # nothing since: grace from 2029-11-20, then bronze
    assert [entry(c) for c in timeline] == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-06-10", "upgrade", "silver", "gold", "1100"),
        ("2026-06-10", "grace_started", "gold", "gold", "100"),
        ("2026-09-10", "downgrade", "gold", "silver", "250"),
        ("2027-09-10", "grace_started", "silver", "silver", "100"),
        ("2027-11-20", "requalified", "silver", "silver", "300"),
        ("2028-11-20", "requalified", "silver", "silver", "350"),
        ("2029-11-20", "grace_started", "silver", "silver", "0"),
        ("2030-02-20", "downgrade", "silver", "bronze", "0"),
    ]
    assert state == TierState("bronze", at("2030-02-20"), review_at=None)
    assert timeline[3].reason == "spend 250 below 1000 at re-qualification"


def test_downgrade_to_qualified_skips_levels_without_grace() -> None:
    rules = policy(downgrade="to_qualified")
    activities = [spend("2025-03-01", "1200")]
    start = initial_state(rules, at("2025-01-01"))
    state, _ = on_activity(rules, start, activities, at("2025-03-01"), PARIS)
    assert state.tier == "gold"
    state, changes = review(rules, state, activities, at("2026-03-02"), PARIS)
    # Review due 2026-03-01; window (2025-03-01, 2026-03-01] holds nothing: to bronze.
    assert [entry(c) for c in changes] == [("2026-03-01", "downgrade", "gold", "bronze", "0")]
    assert state.review_at is None


def test_calendar_year_window_judges_the_closed_year() -> None:
    rules = policy(window="calendar_year")
    activities = [spend("2025-03-01", "350"), spend("2026-01-05", "50")]
    start = initial_state(rules, at("2025-01-01"))
    state, _ = on_activity(rules, start, activities[:1], at("2025-03-01"), PARIS)
    assert (state.tier, state.review_at) == ("silver", at("2026-01-01"))
    # Each 1 January judges the calendar year that just closed: 2025 = 350, 2026 = 50.
    state, changes = review(rules, state, activities, at("2027-01-01"), PARIS)
    assert [entry(c) for c in changes] == [
        ("2026-01-01", "requalified", "silver", "silver", "350"),
        ("2027-01-01", "downgrade", "silver", "bronze", "50"),
    ]


def test_manual_assignment_holds_until_it_expires() -> None:
    rules = policy()
    state = initial_state(rules, at("2025-01-01"))
    activities = [spend("2025-01-10", "120"), spend("2025-05-01", "320")]
    state, change = assign(rules, state, "gold", at("2025-01-15"), at("2025-07-15"), "goodwill",
                           activities=activities[:1], zone=PARIS)  # fmt: skip
    # the member's value when assigned, with the timeline's four places
    assert (entry(change), str(change.value)) == (
        ("2025-01-15", "assigned", "bronze", "gold", "120"),
        "120.0000",
    )
    held, nothing = review(rules, state, activities, at("2025-07-14"), PARIS)
    assert (held.tier, nothing) == ("gold", [])
    state, changes = review(rules, state, activities, at("2025-07-15"), PARIS)
    assert [entry(c) for c in changes] == [
        ("2025-07-15", "assignment_expired", "gold", "silver", "440")
    ]
    assert state.review_at == at("2026-07-15")


def test_one_pass_values_after_a_moment_are_the_window_values() -> None:
    # Month ends (clamped), the DST changes, the year's edges, two events at one instant,
    # a time in another zone: each moment's value is what window_value says.
    days = ["2024-01-31T10:00", "2024-02-29T23:30", "2024-03-31T02:30", "2024-10-27T02:30",
            "2024-12-31T23:59", "2025-01-01T00:00", "2025-02-28T12:00", "2025-03-31T00:00",
            "2025-03-31T00:00", "2025-12-31T23:00"]  # fmt: skip
    activities = [
        Activity(datetime.fromisoformat(d).replace(tzinfo=PARIS), Decimal(f"{i}.5"), i, 1)
        for i, d in enumerate(days, start=1)
    ]
    activities.append(Activity(datetime.fromisoformat("2025-01-31T22:00:00+00:00"), Decimal(7)))
    since, until = at("2024-01-01"), at("2025-12-31")
    for fields in [{}, {"window_months": 1}, {"window_months": 13}, {"window": "calendar_year"}]:
        for metric in ["spend", "points", "purchases"]:
            rules = policy(metric=metric, **fields)
            found = _values_after(rules, activities, since, until, PARIS)
            expected = sorted({a.at for a in activities if since < a.at <= until})
            assert [t for t, _ in found] == expected
            for moment, value in found:
                assert value == window_value(rules, activities, moment, PARIS), (fields, moment)


def on_time(
    rules: TierPolicy, state: TierState, activities: list[Activity], reviews: list[str]
) -> tuple[TierState, list[TierChange]]:
    """The member's history as a timely daily job (on each day of ``reviews``) and their
    events (each upgrading or ending a grace period as it happens) write it."""
    changes: list[TierChange] = []
    moments = sorted({a.at for a in activities if a.at > state.since} | {at(d) for d in reviews})
    for moment in moments:
        state, done = review(rules, state, activities, moment, PARIS)  # due steps first
        changes += done
        seen = [a for a in activities if a.at <= moment]
        if any(a.at == moment for a in activities):
            state, done = on_activity(rules, state, seen, moment, PARIS)
            changes += done
    return state, changes


def test_a_late_review_dates_a_requalification_in_grace_when_the_value_reached_it() -> None:
    """The QA report's B and D: silver from 350 on 2025-01-15, grace from 2026-01-15;
    100 on 2026-02-10 and 250 on 2026-03-01 reach 300 again. Reviewed once, late (the
    events recorded meanwhile without the grace applied), the history is the timely one:
    requalified on 2026-03-01 (not at the grace end, 2026-04-15), next review a year on."""
    rules = policy(grace_months=3)
    silver = TierState("silver", at("2025-01-15"), at("2026-01-15"))
    activities = [spend("2025-01-15", "350"), spend("2026-02-10", "100"),
                  spend("2026-03-01", "250")]  # fmt: skip
    late, late_changes = review(rules, silver, activities, at("2026-06-01"), PARIS)
    timely, timely_changes = on_time(rules, silver, activities, ["2026-01-16", "2026-06-01"])
    assert (
        [entry(c) for c in late_changes]
        == [entry(c) for c in timely_changes]
        == [
            ("2026-01-15", "grace_started", "silver", "silver", "0"),
            ("2026-03-01", "requalified", "silver", "silver", "350"),
        ]
    )
    assert [c.reason for c in late_changes] == [c.reason for c in timely_changes]
    assert late == timely == TierState("silver", at("2025-01-15"), at("2027-03-01"))


def test_a_late_review_split_in_two_runs_dates_the_requalification_as_one_run() -> None:
    """The same history reviewed first up to 2026-02-20 (the grace period starts, nothing
    in it reaches 300 yet), then up to 2026-06-01: the second run starts from a member in
    grace and looks at the activity inside the grace period, so the re-qualification is
    dated 2026-03-01 (not the grace end, 2026-04-15), as one run and a timely job date it."""
    rules = policy(grace_months=3)
    silver = TierState("silver", at("2025-01-15"), at("2026-01-15"))
    activities = [spend("2025-01-15", "350"), spend("2026-02-10", "100"),
                  spend("2026-03-01", "250")]  # fmt: skip
    first, first_changes = review(rules, silver, activities, at("2026-02-20"), PARIS)
    assert first == TierState("silver", at("2025-01-15"), at("2026-01-15"), at("2026-04-15"))
    second, second_changes = review(rules, first, activities, at("2026-06-01"), PARIS)
    one, one_changes = review(rules, silver, activities, at("2026-06-01"), PARIS)
    assert (
        [entry(c) for c in first_changes + second_changes]
        == [entry(c) for c in one_changes]
        == [
            ("2026-01-15", "grace_started", "silver", "silver", "0"),
            ("2026-03-01", "requalified", "silver", "silver", "350"),
        ]
    )
    assert [c.reason for c in first_changes + second_changes] == [c.reason for c in one_changes]
    assert second == one == TierState("silver", at("2025-01-15"), at("2027-03-01"))
    # a run before the grace end that finds nothing reached changes nothing
    assert review(rules, first, activities[:2], at("2026-03-10"), PARIS) == (first, [])


def test_a_late_review_applies_the_upgrade_activity_reached_after_a_step() -> None:
    """Downgraded at the grace end, then lifted to gold by activity recorded before the
    review ran: the same entries, dates and next review as on time."""
    rules = policy(grace_months=1, downgrade="to_qualified")
    gold = TierState("gold", at("2025-01-15"), at("2026-01-15"))
    activities = [spend("2025-01-15", "1000"), spend("2026-02-20", "600"),
                  spend("2026-03-20", "500")]  # fmt: skip
    late, late_changes = review(rules, gold, activities, at("2026-06-01"), PARIS)
    timely, timely_changes = on_time(rules, gold, activities, ["2026-06-01"])
    assert (
        [entry(c) for c in late_changes]
        == [entry(c) for c in timely_changes]
        == [
            ("2026-01-15", "grace_started", "gold", "gold", "0"),
            ("2026-02-15", "downgrade", "gold", "bronze", "0"),
            ("2026-02-20", "upgrade", "bronze", "silver", "600"),
            ("2026-03-20", "upgrade", "silver", "gold", "1100"),
        ]
    )
    assert late == timely


def test_reasons_write_thresholds_without_trailing_zeros() -> None:
    """Thresholds written ``300.50`` and ``"1000.00"`` in the program file: the reasons
    write them as they write values (``reached 300.5``, ``below 1000``)."""
    rules = TierPolicy.model_validate({
        "grace_months": 1,
        "levels": [
            {"id": "bronze", "name": "Bronze", "threshold": 0},
            {"id": "silver", "name": "Silver", "threshold": Decimal("300.50")},
            {"id": "gold", "name": "Gold", "threshold": "1000.00"},
        ],
    })  # fmt: skip
    activities = [spend("2025-01-15", "400"), spend("2025-02-01", "700")]
    state = initial_state(rules, at("2025-01-01"))
    reasons = []
    for activity in activities:
        state, changes = on_activity(rules, state, activities, activity.at, PARIS)
        reasons += [c.reason for c in changes]
    requalify = [spend("2025-01-15", "400"), spend("2025-02-01", "700"),
                 spend("2026-01-20", "1000.00")]  # fmt: skip
    state, changes = review(rules, state, requalify, at("2027-03-10"), PARIS)
    reasons += [c.reason for c in changes]
    assert reasons == [
        "spend 400 reached 300.5",
        "spend 1100 reached 1000",
        "spend 1000 meets 1000",
        "spend 0 below 1000; grace until 2027-03-01",
        "spend 0 below 1000 at re-qualification",
    ]
