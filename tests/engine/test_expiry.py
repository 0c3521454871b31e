"""Expiry and pending dates in the program's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from fidelite.engine.calendar import LocalDays, add_days, add_months
from fidelite.engine.expiry import (
    ExpiryDates,
    Lapse,
    expires_at,
    inactivity_deadline,
    inactivity_lapse,
    pending_until,
    warning_at,
)
from fidelite.program.policy import ExpiryPolicy, PendingPolicy

PARIS = ZoneInfo("Europe/Paris")


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_expiry_after_months_clamps_day() -> None:
    policy = ExpiryPolicy(mode="after_earning", months=1)  # type: ignore[arg-type]
    assert expires_at(policy, dt("2027-01-31T10:00:00+01:00"), PARIS) == dt(
        "2027-02-28T10:00:00+01:00"
    )


def test_expiry_keeps_local_time_across_dst() -> None:
    policy = ExpiryPolicy(mode="after_earning", months=6)  # type: ignore[arg-type]
    assert expires_at(policy, dt("2026-01-15T09:00:00+01:00"), PARIS) == dt(
        "2026-07-15T09:00:00+02:00"
    )


def test_expiry_end_of_month_uses_local_month() -> None:
    # 2026-03-31T23:30Z is already 1 April in Paris: + 12 months = April 2027 -> 1 May.
    policy = ExpiryPolicy(mode="after_earning", months=12, rounding="end_of_month")  # type: ignore[arg-type]
    assert expires_at(policy, dt("2026-03-31T23:30:00+00:00"), PARIS) == dt(
        "2027-05-01T00:00:00+02:00"
    )


def test_expiry_end_of_year() -> None:
    policy = ExpiryPolicy(mode="after_earning", months=24, rounding="end_of_year")  # type: ignore[arg-type]
    assert expires_at(policy, dt("2026-02-10T12:00:00+01:00"), PARIS) == dt(
        "2029-01-01T00:00:00+01:00"
    )


def test_inactivity_policy_gives_no_lot_date_but_a_deadline() -> None:
    policy = ExpiryPolicy(mode="inactivity", months=18, warn_days=45)  # type: ignore[arg-type]
    assert expires_at(policy, dt("2026-02-10T12:00:00+01:00"), PARIS) is None
    deadline = inactivity_deadline(policy, dt("2026-02-10T12:00:00+01:00"), PARIS)
    assert deadline == dt("2027-08-10T12:00:00+02:00")
    assert warning_at(policy, deadline, PARIS) == dt("2027-06-26T12:00:00+02:00")


def test_the_warning_is_warn_days_local_days_before_across_a_dst_change() -> None:
    """30 days before midnight of 15 November in Paris is midnight of 16 October, in
    summer time: 24-hour steps would warn at 23:00 on the 15th, an hour early."""
    policy = ExpiryPolicy(mode="after_earning", months=12, warn_days=30)  # type: ignore[arg-type]
    expiry = dt("2026-11-15T00:00:00+01:00")
    assert warning_at(policy, expiry, PARIS) == dt("2026-10-16T00:00:00+02:00")
    assert warning_at(policy, expiry, ZoneInfo("UTC")) == dt("2026-10-15T23:00:00+00:00")
    spring = dt("2027-04-10T00:00:00+02:00")  # 30 days before: 11 March, winter time
    assert warning_at(policy, spring, PARIS) == dt("2027-03-11T00:00:00+01:00")


def test_pending_applies_to_listed_event_types() -> None:
    policy = PendingPolicy(days=14, event_types=["purchase"])
    at = dt("2026-11-23T10:00:00+01:00")
    assert pending_until(policy, "purchase", at, PARIS) == dt("2026-12-07T10:00:00+01:00")
    assert pending_until(policy, "review", at, PARIS) is None


def test_pending_counts_local_calendar_days_across_a_dst_change() -> None:
    """14 days from 10:00 end at 10:00 local time, as expiry keeps the local clock: in
    24-hour steps the hold ended an hour early (09:00) after the change to winter time,
    and an hour late (11:00) after the change to summer time."""
    policy = PendingPolicy(days=14, event_types=["purchase"])
    autumn = pending_until(policy, "purchase", dt("2026-10-20T10:00:00+02:00"), PARIS)
    assert autumn == dt("2026-11-03T10:00:00+01:00")
    spring = pending_until(policy, "purchase", dt("2026-03-20T10:00:00+01:00"), PARIS)
    assert spring == dt("2026-04-03T10:00:00+02:00")
    # Sent in UTC, the event is read on the program's clock all the same.
    assert pending_until(policy, "purchase", dt("2026-10-20T08:00:00+00:00"), PARIS) == dt(
        "2026-11-03T09:00:00+00:00"
    )


def test_pending_ends_at_a_skipped_or_repeated_local_time_as_expiry_reads_it() -> None:
    """02:30 does not exist on 2026-03-29 in Paris and happens twice on 2026-10-25: read
    with the earning time's fold, as a month later is (the offset before the change)."""
    policy = PendingPolicy(days=14, event_types=["purchase"])
    skipped = pending_until(policy, "purchase", dt("2026-03-15T02:30:00+01:00"), PARIS)
    assert skipped == dt("2026-03-29T03:30:00+02:00")
    repeated = pending_until(policy, "purchase", dt("2026-10-11T02:30:00+02:00"), PARIS)
    assert repeated == dt("2026-10-25T02:30:00+02:00")
    assert skipped == add_months(dt("2026-01-29T02:30:00+01:00"), 2, PARIS).astimezone(UTC)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo"]),
    st.integers(min_value=1, max_value=400),
)
def test_local_days_for_many_events_equal_add_days(
    moment: datetime, zone_name: str, days: int
) -> None:
    """The evaluator's shortcut (24 hours a day away from offset changes) gives exactly
    the zone arithmetic's answer, for events sent in the zone's offset or in UTC."""
    zone, delta = ZoneInfo(zone_name), timedelta(days=days)
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    sent = datetime.fromisoformat(local.isoformat())  # a fixed offset, as events carry
    for at in (sent, sent.astimezone(UTC)):
        assert LocalDays(zone, delta).add(at) == add_days(at, delta, zone)


# ------------------------------------------------------------------ inactivity lapses

MONTHLY = ExpiryPolicy(mode="inactivity", months=1)  # type: ignore[arg-type]


def test_inactivity_lapse_needs_the_deadline_reached() -> None:
    activity = [dt("2026-01-10T12:00:00+01:00")]
    assert inactivity_lapse(MONTHLY, activity, dt("2026-02-10T11:59:59+01:00"), PARIS) is None
    assert inactivity_lapse(MONTHLY, activity, dt("2026-02-10T12:00:00+01:00"), PARIS) == Lapse(
        dt("2026-01-10T12:00:00+01:00"), dt("2026-02-10T12:00:00+01:00")
    )


def test_inactivity_lapse_counts_months_in_the_program_zone() -> None:
    # 30 January 23:30 UTC is already 31 January in Paris: + 1 month = 28 February 00:30
    # Paris (27 February 23:30 UTC); in UTC it would be 28 February 23:30.
    activity = [dt("2026-01-30T23:30:00+00:00")]
    as_of = dt("2026-02-28T00:00:00+00:00")
    lapse = inactivity_lapse(MONTHLY, activity, as_of, PARIS)
    assert lapse is not None and lapse.deadline == dt("2026-02-27T23:30:00+00:00")
    assert inactivity_lapse(MONTHLY, activity, as_of, ZoneInfo("UTC")) is None


def test_inactivity_lapse_is_saved_by_an_activity_before_the_deadline() -> None:
    activity = [dt("2026-01-10T12:00:00+01:00"), dt("2026-02-10T11:59:00+01:00")]
    assert inactivity_lapse(MONTHLY, activity, dt("2026-03-01T00:00:00+01:00"), PARIS) is None


def test_inactivity_lapse_activity_at_the_deadline_is_too_late() -> None:
    activity = [dt("2026-01-10T12:00:00+01:00"), dt("2026-02-10T12:00:00+01:00")]
    lapse = inactivity_lapse(MONTHLY, activity, dt("2026-02-20T00:00:00+01:00"), PARIS)
    assert lapse == Lapse(dt("2026-01-10T12:00:00+01:00"), dt("2026-02-10T12:00:00+01:00"))


def test_inactivity_lapse_returns_the_latest_of_several() -> None:
    activity = [
        dt("2025-01-05T10:00:00+01:00"),  # lapses 2025-02-05
        dt("2025-06-01T10:00:00+02:00"),
        dt("2025-06-20T10:00:00+02:00"),  # lapses 2025-07-20
        dt("2025-09-01T10:00:00+02:00"),  # saved by the next one
        dt("2025-09-25T10:00:00+02:00"),  # would lapse 2025-10-25, after as_of
    ]
    lapse = inactivity_lapse(MONTHLY, activity, dt("2025-10-01T00:00:00+02:00"), PARIS)
    assert lapse == Lapse(dt("2025-06-20T10:00:00+02:00"), dt("2025-07-20T10:00:00+02:00"))


def test_inactivity_lapse_ignores_other_modes() -> None:
    dated = ExpiryPolicy(mode="after_earning", months=1)  # type: ignore[arg-type]
    activity = [dt("2020-01-01T00:00:00+00:00")]
    assert inactivity_lapse(dated, activity, dt("2026-01-01T00:00:00+00:00"), PARIS) is None
    assert (
        inactivity_lapse(ExpiryPolicy(), activity, dt("2026-01-01T00:00:00+00:00"), PARIS) is None
    )


def _lapse_by_definition(
    policy: ExpiryPolicy, activity: list[datetime], as_of: datetime, zone: ZoneInfo
) -> Lapse | None:
    """The reference: the latest activity with no other activity before its deadline."""
    found = None
    for at in activity:
        deadline = inactivity_deadline(policy, at, zone)
        assert deadline is not None
        if deadline <= as_of and not any(at < other < deadline for other in activity):
            found = Lapse(at, deadline)
    return found


@given(
    months=st.integers(min_value=1, max_value=14),
    offsets=st.lists(st.integers(min_value=0, max_value=3 * 365 * 24), max_size=12),
    as_of_hours=st.integers(min_value=0, max_value=4 * 365 * 24),
)
def test_inactivity_lapse_matches_its_definition(
    months: int, offsets: list[int], as_of_hours: int
) -> None:
    policy = ExpiryPolicy(mode="inactivity", months=months)  # type: ignore[arg-type]
    start = dt("2025-01-31T00:30:00+01:00")
    activity = sorted(start + timedelta(hours=h) for h in offsets)
    as_of = start + timedelta(hours=as_of_hours)
    assert inactivity_lapse(policy, activity, as_of, PARIS) == _lapse_by_definition(
        policy, activity, as_of, PARIS
    )


# ------------------------------------------------------------ the calendar's ends

LATE = dt("9999-12-31T23:00:00+00:00")  # 10000-01-01 in Paris


def test_no_expiry_date_past_the_calendars_end() -> None:
    for policy in (
        ExpiryPolicy(mode="after_earning", months=12),  # type: ignore[arg-type]
        ExpiryPolicy(mode="after_earning", months=1, rounding="end_of_month"),  # type: ignore[arg-type]
    ):
        assert expires_at(policy, dt("9999-12-15T10:00:00+00:00"), PARIS) is None
        assert expires_at(policy, LATE, PARIS) is None
        assert ExpiryDates(policy, PARIS).expires_at(LATE) is None


def test_a_hold_past_the_calendars_end_ends_at_its_last_instant() -> None:
    policy = PendingPolicy(days=14, event_types=["purchase"])
    assert pending_until(policy, "purchase", LATE, PARIS) == datetime.max.replace(tzinfo=UTC)
    expiring = ExpiryPolicy(mode="after_earning", months=1, warn_days=30)  # type: ignore[arg-type]
    warned = warning_at(expiring, dt("0001-01-10T00:00:00+00:00"), PARIS)
    assert warned == datetime.min.replace(tzinfo=UTC)


def test_an_activity_whose_deadline_is_past_the_calendar_starts_no_lapse() -> None:
    policy = ExpiryPolicy(mode="inactivity", months=3)  # type: ignore[arg-type]
    activity = [dt("9999-11-15T10:00:00+00:00")]
    assert inactivity_deadline(policy, activity[0], PARIS) is None
    end = datetime.max.replace(tzinfo=UTC)
    assert inactivity_lapse(policy, activity, end, PARIS) is None
    earlier = [dt("9999-01-15T10:00:00+00:00"), *activity]
    assert inactivity_lapse(policy, earlier, end, PARIS) == Lapse(
        earlier[0], dt("9999-04-15T11:00:00+02:00")
    )
