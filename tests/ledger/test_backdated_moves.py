"""A move dated before what it acts on is refused, and a back-dated debit draws only the
points the member held at its date: a reversal before its original, a release before
its earn (``invalid_request`` on ``at``, naming both times), a spend or debit dated
before an earn (``insufficient_points``: that lot is not theirs yet), while a refund's
shortfall draws what the member holds when it is recorded. Each refusal changes
nothing. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest

from fidelite.ledger import Rejected, RejectionCode
from tests.support import CheckedLedger, snapshot


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def refused(ledger: CheckedLedger, call: str, *args: object, **kw: object) -> Rejected:
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as caught:
        getattr(ledger, call)("shop", *args, **kw)
    assert snapshot(ledger.db) == before
    return caught.value


def test_a_reversal_dated_before_the_earn_is_refused(ledger: CheckedLedger) -> None:
    earn = ledger.earn("shop", "alice", "points", 100, key="e1", at=at("2026-09-30T12:00:00+00:00"))
    no = refused(ledger, "reverse", earn.transaction_id, key="r1", points=5,
                 at=at("2026-06-10T00:00:00+00:00"))  # fmt: skip
    assert no.code is RejectionCode.INVALID_REQUEST
    assert no.field == "at"
    assert no.message == (
        "a reversal cannot be dated before the transaction it reverses: at "
        f"2026-06-10T00:00:00+00:00 is before transaction {earn.transaction_id} "
        "at 2026-09-30T12:00:00+00:00"
    )
    assert no.detail == {"at": "2026-06-10T00:00:00+00:00",
                         "original_at": "2026-09-30T12:00:00+00:00"}  # fmt: skip
    # at the earn's own time it stands
    back = ledger.reverse("shop", earn.transaction_id, key="r1", points=5,
                          at=at("2026-09-30T12:00:00+00:00"))  # fmt: skip
    assert back.points == 5
    assert (
        ledger.balance("shop", "alice", "points", as_of="2026-10-01T00:00:00+00:00").available == 95
    )


def test_a_cancellation_dated_before_the_spend_is_refused(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=at("2026-09-30T12:00:00+00:00"))
    spend = ledger.spend(
        "shop", "alice", "points", 60, key="s1", at=at("2026-10-22T12:00:00+00:00")
    )
    no = refused(ledger, "reverse", spend.transaction_id, key="r1",
                 at=at("2026-09-01T00:00:00+00:00"))  # fmt: skip
    assert (no.code, no.field) == (RejectionCode.INVALID_REQUEST, "at")
    assert "before transaction" in no.message and "2026-10-22T12:00:00+00:00" in no.message


def test_a_release_dated_before_the_earn_is_refused(ledger: CheckedLedger) -> None:
    earn = ledger.earn("shop", "alice", "points", 40, key="e1", at=at("2026-09-30T12:00:00+00:00"),
                       pending_until=at("2026-10-30T00:00:00+00:00"))  # fmt: skip
    no = refused(
        ledger, "release", earn.transaction_id, key="l1", at=at("2026-09-01T00:00:00+00:00")
    )
    assert (no.code, no.field) == (RejectionCode.INVALID_REQUEST, "at")
    assert no.message == (
        "a release cannot be dated before the transaction it releases: at "
        f"2026-09-01T00:00:00+00:00 is before transaction {earn.transaction_id} "
        "at 2026-09-30T12:00:00+00:00"
    )


def test_a_back_dated_spend_draws_no_lot_earned_after_it(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=at("2026-09-30T12:00:00+00:00"))
    no = refused(
        ledger, "spend", "alice", "points", 10, key="s1", at=at("2026-06-01T00:00:00+00:00")
    )
    assert no.code is RejectionCode.INSUFFICIENT_POINTS
    assert no.detail == {"available": 0, "requested": 10}
    debit = refused(ledger, "adjust", "alice", "points", -10, key="a1", reason="fix",
                    actor="ops", at=at("2026-06-01T00:00:00+00:00"))  # fmt: skip
    assert debit.code is RejectionCode.INSUFFICIENT_POINTS


def test_a_back_dated_spend_draws_only_the_lots_held_at_its_date(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 30, key="e1", at=at("2026-05-01T00:00:00+00:00"))
    ledger.earn("shop", "alice", "points", 100, key="e2", at=at("2026-09-30T12:00:00+00:00"))
    ledger.earn("shop", "alice", "points", 50, key="e3", at=at("2026-04-01T00:00:00+00:00"),
                pending_until=at("2026-07-01T00:00:00+00:00"))  # fmt: skip
    no = refused(
        ledger, "spend", "alice", "points", 31, key="s1", at=at("2026-06-01T00:00:00+00:00")
    )
    assert no.detail == {"available": 30, "requested": 31, "pending": 50,
                         "pending_until": "2026-07-01T00:00:00+00:00"}  # fmt: skip
    spent = ledger.spend(
        "shop", "alice", "points", 30, key="s1", at=at("2026-06-01T00:00:00+00:00")
    )
    assert spent.points == 30
    # after the hold's end the held lot is spendable (the spend releases it), the later one not
    later = ledger.spend(
        "shop", "alice", "points", 50, key="s2", at=at("2026-08-01T00:00:00+00:00")
    )
    assert later.points == 50
    assert (
        refused(
            ledger, "spend", "alice", "points", 1, key="s3", at=at("2026-08-01T00:00:00+00:00")
        ).code
        is RejectionCode.INSUFFICIENT_POINTS
    )


def test_a_lot_released_early_by_hand_is_spendable_from_its_release(ledger: CheckedLedger) -> None:
    earn = ledger.earn("shop", "alice", "points", 40, key="e1", at=at("2026-09-01T00:00:00+00:00"),
                       pending_until=at("2026-12-01T00:00:00+00:00"))  # fmt: skip
    ledger.release("shop", earn.transaction_id, key="l1", at=at("2026-10-01T00:00:00+00:00"))
    no = refused(
        ledger, "spend", "alice", "points", 10, key="s1", at=at("2026-09-15T00:00:00+00:00")
    )
    assert no.detail["available"] == 0
    assert ledger.spend("shop", "alice", "points", 10, key="s1",
                        at=at("2026-10-02T00:00:00+00:00")).points == 10  # fmt: skip


def test_a_back_dated_shortfall_draws_what_the_member_holds_now(ledger: CheckedLedger) -> None:
    """A refund's shortfall is taken from what the member holds when it is recorded,
    points earned after its date included: nothing is written off while they can pay."""
    earn = ledger.earn("shop", "alice", "points", 100, key="e1", at=at("2026-03-01T00:00:00+00:00"))
    ledger.spend("shop", "alice", "points", 60, key="s1", at=at("2026-03-02T00:00:00+00:00"))
    ledger.earn("shop", "alice", "points", 500, key="e2", at=at("2026-09-30T00:00:00+00:00"))
    back = ledger.reverse("shop", earn.transaction_id, key="r1", shortfall="within_balance",
                          at=at("2026-04-01T00:00:00+00:00"))  # fmt: skip
    assert (back.points, back.written_off) == (100, 0)
    assert (
        ledger.balance("shop", "alice", "points", as_of="2026-10-01T00:00:00+00:00").available
        == 440
    )
