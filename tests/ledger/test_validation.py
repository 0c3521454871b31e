"""Bad input: a clear error naming the field, and nothing changed (CheckedLedger asserts it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from fidelite.ledger import Rejected, RejectionCode
from tests.support import T0, CheckedLedger

BAD_POINTS = [0, -5, 1.5, 10.0, "10", True, None, Decimal("3"), 10**16]


@pytest.mark.parametrize("points", BAD_POINTS)
def test_earn_with_bad_points_is_rejected(ledger: CheckedLedger, points: object) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.earn("shop", "alice", "points", points, key="k", at=T0)  # type: ignore[arg-type]
    assert (exc.value.code, exc.value.field) == (RejectionCode.INVALID_REQUEST, "points")


@pytest.mark.parametrize("points", BAD_POINTS)
def test_spend_with_bad_points_is_rejected(ledger: CheckedLedger, points: object) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e", at=T0)
    with pytest.raises(Rejected) as exc:
        ledger.spend("shop", "alice", "points", points, key="k", at=T0)  # type: ignore[arg-type]
    assert (exc.value.code, exc.value.field) == (RejectionCode.INVALID_REQUEST, "points")


def test_adjust_of_zero_is_rejected(ledger: CheckedLedger) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.adjust("shop", "alice", "points", 0, key="k", reason="x", actor="y")
    assert exc.value.field == "points" and "zero" in exc.value.message


@pytest.mark.parametrize(("field", "value"), [("actor", ""), ("reason", "  "), ("actor", None)])
def test_adjust_without_actor_or_reason_is_rejected(
    ledger: CheckedLedger, field: str, value: object
) -> None:
    args = {"reason": "goodwill", "actor": "ops"} | {field: value}
    with pytest.raises(Rejected) as exc:
        ledger.adjust("shop", "alice", "points", 10, key="k", **args)  # type: ignore[arg-type]
    assert (exc.value.code, exc.value.field) == (RejectionCode.INVALID_REQUEST, field)


def test_unknown_member_is_rejected(ledger: CheckedLedger) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.earn("shop", "zoe", "points", 10, key="k", at=T0)
    assert (exc.value.code, exc.value.field) == (RejectionCode.UNKNOWN_MEMBER, "member_ref")
    assert "zoe" in exc.value.message


def test_unknown_currency_is_rejected(ledger: CheckedLedger) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.earn("shop", "alice", "stars", 10, key="k", at=T0)
    assert (exc.value.code, exc.value.field) == (RejectionCode.UNKNOWN_CURRENCY, "currency")


def test_unknown_program_is_rejected(ledger: CheckedLedger) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.earn("nope", "alice", "points", 10, key="k", at=T0)
    assert exc.value.code is RejectionCode.UNKNOWN_PROGRAM


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", "2026-13-01"),
        ("at", "yesterday"),
        ("at", datetime(2026, 1, 1, 12, 0)),  # no time zone
        ("expires_at", "2026-02-30"),
        ("expires_at", "2025-12-31"),  # before the time of earning
        ("pending_until", "not a date"),
        ("expires_at", 20260101),
    ],
)
def test_malformed_dates_are_rejected(ledger: CheckedLedger, field: str, value: object) -> None:
    args: dict[str, object] = {"at": T0} | {field: value}
    with pytest.raises(Rejected) as exc:
        ledger.earn("shop", "alice", "points", 10, key="k", **args)  # type: ignore[arg-type]
    assert (exc.value.code, exc.value.field) == (RejectionCode.INVALID_REQUEST, field)


def test_iso_text_dates_are_accepted(ledger: CheckedLedger) -> None:
    r = ledger.earn("shop", "alice", "points", 10, key="k", at="2026-01-01T08:00:00+02:00",
                    expires_at="2027-01-01")  # fmt: skip
    assert r.occurred_at == datetime.fromisoformat("2026-01-01T06:00:00+00:00")


@pytest.mark.parametrize("key", ["", "   ", None, "x" * 201])
def test_missing_or_bad_key_is_rejected(ledger: CheckedLedger, key: object) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.earn("shop", "alice", "points", 10, key=key, at=T0)  # type: ignore[arg-type]
    assert (exc.value.code, exc.value.field) == (RejectionCode.INVALID_REQUEST, "key")


def test_bad_shortfall_policy_is_rejected(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 10, key="e", at=T0)
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", e.transaction_id, key="r", shortfall="forgive")
    assert exc.value.field == "shortfall"


def test_bad_program_and_currency_identifiers_are_rejected(ledger: CheckedLedger) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.open_program("bad id!", ["points"])
    assert exc.value.field == "program_id"
    with pytest.raises(Rejected) as exc:
        ledger.open_program("ok", [])
    assert exc.value.field == "currencies"


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
     datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))],
)  # fmt: skip
def test_a_time_outside_the_calendar_once_in_utc_is_rejected(
    ledger: CheckedLedger, when: object
) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.earn("shop", "alice", "points", 10, key="k", at=when)  # type: ignore[arg-type]
    assert (exc.value.code, exc.value.field) == (RejectionCode.INVALID_REQUEST, "at")
    assert exc.value.message.endswith("is outside the calendar once in UTC")
