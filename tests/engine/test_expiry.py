"""Expiry and pending dates in the program's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fidelite.engine.expiry import expires_at, inactivity_deadline, pending_until, warning_at
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
    assert warning_at(policy, deadline) == dt("2027-06-26T12:00:00+02:00")


def test_pending_applies_to_listed_event_types() -> None:
    policy = PendingPolicy(days=14, event_types=["purchase"])
    at = dt("2026-11-23T10:00:00+01:00")
    assert pending_until(policy, "purchase", at) == dt("2026-12-07T10:00:00+01:00")
    assert pending_until(policy, "review", at) is None
