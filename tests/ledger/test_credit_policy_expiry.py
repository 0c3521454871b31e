"""A credit (earn, credit adjustment) without an expiry date gets, given the program's
``after_earning`` policy, the date an earned lot gets from its time; a date given wins;
without a policy (the bare ledger) or under a policy that dates no lot it gets none. A
key used before replays as it was. On a SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from tests.support import CheckedLedger

YEARLY = ExpiryPolicy(mode="after_earning", months=12, rounding="end_of_month")  # type: ignore[arg-type]
MONTHLY = ExpiryPolicy(mode="after_earning", months=1)  # type: ignore[arg-type]
INACTIVE = ExpiryPolicy(mode="inactivity", months=1)  # type: ignore[arg-type]
PARIS = ZoneInfo("Europe/Paris")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
def ledger(db: Database) -> CheckedLedger:
    """The shared ``ledger`` with its clock in January 2025, when these credits are made: a
    credit whose date is already past at the ledger's clock is refused
    (tests/ledger/test_credit_already_expired.py)."""
    checked = CheckedLedger(db, clock=lambda: datetime(2025, 1, 20, tzinfo=UTC))
    checked.open_program("shop", ["points", "miles"])
    checked.create_member("shop", "alice")
    checked.create_member("shop", "bob")
    return checked


def lot_dates(ledger: CheckedLedger) -> list[tuple[int, datetime | None]]:
    with ledger.db.read() as conn:
        rows = conn.execute(text("SELECT points, expires_at FROM lots ORDER BY id")).all()
    found = []
    for points, expires in rows:
        when = expires if expires is None or isinstance(expires, datetime) else at(str(expires))
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        found.append((int(points), when))
    return found


def test_a_credit_without_a_date_gets_the_policys_date(ledger: CheckedLedger) -> None:
    # earned 2025-01-10 in Paris: 12 months, end of month -> 1 February 2026 00:00 Paris
    ledger.adjust("shop", "bob", "points", 25, key="gw1", reason="outage goodwill",
                  actor="qa", at="2025-01-10T00:00:00+00:00", policy=YEARLY,
                  zone=PARIS)  # fmt: skip
    ledger.earn("shop", "bob", "points", 7, key="e1", at="2025-01-12T10:00:00+00:00",
                policy=MONTHLY, zone=PARIS)  # fmt: skip
    # a date given wins
    ledger.adjust("shop", "bob", "points", 5, key="gw2", reason="x", actor="qa",
                  at="2025-01-10T00:00:00+00:00", expires_at="2025-06-01T00:00:00+00:00",
                  policy=YEARLY, zone=PARIS)  # fmt: skip
    ledger.earn("shop", "bob", "points", 3, key="e2", at="2025-01-12T10:00:00+00:00",
                expires_at="2025-03-01T00:00:00+00:00", policy=MONTHLY)  # fmt: skip
    assert lot_dates(ledger) == [
        (25, at("2026-01-31T23:00:00+00:00")),
        (7, at("2025-02-12T10:00:00+00:00")),
        (5, at("2025-06-01T00:00:00+00:00")),
        (3, at("2025-03-01T00:00:00+00:00")),
    ]
    # and they expire on it
    report = ledger.expire("shop", "2026-02-01T00:00:00+00:00", policy=YEARLY, zone=PARIS)
    assert report.points == {"points": 40}


def test_without_a_dating_policy_a_credit_never_expires(ledger: CheckedLedger) -> None:
    ledger.adjust("shop", "bob", "points", 25, key="a1", reason="goodwill", actor="qa",
                  at="2025-01-10T00:00:00+00:00")  # fmt: skip
    ledger.earn("shop", "bob", "points", 7, key="e1", at="2025-01-12T10:00:00+00:00")
    ledger.adjust("shop", "bob", "points", 4, key="a2", reason="goodwill", actor="qa",
                  at="2025-01-10T00:00:00+00:00", policy=INACTIVE)  # fmt: skip
    ledger.earn("shop", "bob", "points", 2, key="e2", at="2025-01-12T10:00:00+00:00",
                policy=ExpiryPolicy())  # fmt: skip
    assert lot_dates(ledger) == [(25, None), (7, None), (4, None), (2, None)]


def test_a_key_used_before_replays_as_it_was(ledger: CheckedLedger) -> None:
    """Credits recorded without the policy (as before it applied to them) are replayed
    under their key when sent again with it: the policy is not in the fingerprint."""
    first = ledger.adjust("shop", "bob", "points", 25, key="gw1", reason="goodwill",
                          actor="qa", at="2025-01-10T00:00:00+00:00")  # fmt: skip
    earned = ledger.earn("shop", "bob", "points", 7, key="e1", at="2025-01-12T10:00:00+00:00")
    again = ledger.adjust("shop", "bob", "points", 25, key="gw1", reason="goodwill",
                          actor="qa", at="2025-01-10T00:00:00+00:00", policy=YEARLY,
                          zone=PARIS)  # fmt: skip
    earned_again = ledger.earn("shop", "bob", "points", 7, key="e1",
                               at="2025-01-12T10:00:00+00:00", policy=MONTHLY)  # fmt: skip
    assert (again.replayed, again.transaction_id) == (True, first.transaction_id)
    assert (earned_again.replayed, earned_again.transaction_id) == (True, earned.transaction_id)
    assert lot_dates(ledger) == [(25, None), (7, None)]


def test_a_debit_and_a_refused_credit_are_as_before(ledger: CheckedLedger) -> None:
    ledger.adjust("shop", "bob", "points", 25, key="a1", reason="goodwill", actor="qa",
                  at="2025-01-10T00:00:00+00:00", policy=YEARLY, zone=PARIS)  # fmt: skip
    ledger.adjust("shop", "bob", "points", -5, key="a2", reason="fix", actor="qa",
                  at="2025-01-11T00:00:00+00:00", policy=YEARLY, zone=PARIS)  # fmt: skip
    with pytest.raises(Rejected) as refused:
        ledger.adjust("shop", "bob", "points", 5, key="a3", reason="x", actor="qa",
                      at="2025-01-11T00:00:00+00:00", expires_at="2025-01-11T00:00:00+00:00",
                      policy=YEARLY)  # fmt: skip
    assert refused.value.field == "expires_at"
    assert lot_dates(ledger) == [(25, at("2026-01-31T23:00:00+00:00"))]
    b = ledger.balance("shop", "bob", "points", as_of="2025-01-12T00:00:00+00:00")
    assert b.available == 20
