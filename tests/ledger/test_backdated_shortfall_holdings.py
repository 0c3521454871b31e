"""A back-dated refund's shortfall is taken from what the member holds when the
reversal is recorded, points earned after its date included (docs/ledger.md): under
``debt`` their points repay first, under ``within_balance`` nothing is written off while
the member can pay. A back-dated spend still draws only what was held at its date. On a
SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from tests.support import CheckedLedger


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def history(ledger: CheckedLedger) -> int:
    earn = ledger.earn("shop", "alice", "points", 100, key="e1", at=at("2026-01-01T00:00:00+00:00"))
    ledger.spend("shop", "alice", "points", 100, key="s1", at=at("2026-01-15T00:00:00+00:00"))
    ledger.earn("shop", "alice", "points", 100, key="e2", at=at("2026-03-01T00:00:00+00:00"))
    return earn.transaction_id


def test_a_back_dated_refund_under_debt_takes_the_points_held_now(ledger: CheckedLedger) -> None:
    earn = history(ledger)
    back = ledger.reverse("shop", earn, key="r1", shortfall="debt",
                          at=at("2026-02-01T00:00:00+00:00"))  # fmt: skip
    assert (back.points, back.written_off, back.debt_added) == (100, 0, 0)
    balance = ledger.balance("shop", "alice", "points", as_of="2026-03-02T00:00:00+00:00")
    assert (balance.available, balance.debt) == (0, 0)


def test_a_back_dated_refund_within_balance_writes_off_nothing_the_member_holds(
    ledger: CheckedLedger,
) -> None:
    earn = history(ledger)
    back = ledger.reverse("shop", earn, key="r1", shortfall="within_balance",
                          at=at("2026-02-01T00:00:00+00:00"))  # fmt: skip
    assert (back.points, back.written_off, back.debt_added) == (100, 0, 0)
    balance = ledger.balance("shop", "alice", "points", as_of="2026-03-02T00:00:00+00:00")
    assert (balance.available, balance.debt) == (0, 0)


def test_a_back_dated_refund_still_writes_off_what_the_member_cannot_pay(
    ledger: CheckedLedger,
) -> None:
    earn = history(ledger)
    ledger.spend("shop", "alice", "points", 70, key="s2", at=at("2026-03-05T00:00:00+00:00"))
    back = ledger.reverse("shop", earn, key="r1", shortfall="within_balance",
                          at=at("2026-02-01T00:00:00+00:00"))  # fmt: skip
    assert (back.points, back.written_off) == (100, 70)
    balance = ledger.balance("shop", "alice", "points", as_of="2026-03-06T00:00:00+00:00")
    assert (balance.available, balance.debt) == (0, 0)
