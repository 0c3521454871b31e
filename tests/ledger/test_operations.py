"""Every ledger operation, on SQLite and PostgreSQL, with exact balances after each step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected, RejectionCode
from tests.support import T0, CheckedLedger

DAY = timedelta(days=1)


def bal(ledger: CheckedLedger, member: str = "alice", at=T0 + DAY, currency: str = "points"):
    b = ledger.balance("shop", member, currency, as_of=at)
    return (b.available, b.pending, b.expiring_soon, b.debt)


def test_earn_credits_a_new_available_lot(ledger: CheckedLedger) -> None:
    r = ledger.earn("shop", "alice", "points", 120, key="e1", at=T0, expires_at=T0 + 365 * DAY,
                    reason="purchase", source="order:1")  # fmt: skip
    assert (r.kind, r.direction, r.points, r.available_after, r.pending_after) == (
        "earn", "credit", 120, 120, 0,
    )  # fmt: skip
    assert [(m.points) for m in r.lot_moves] == [120]
    assert bal(ledger) == (120, 0, 0, 0)
    assert bal(ledger, "bob") == (0, 0, 0, 0)


def test_earn_with_pending_until_holds_points(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 80, key="e1", at=T0, pending_until=T0 + 14 * DAY)
    assert bal(ledger) == (0, 80, 0, 0)
    with pytest.raises(Rejected) as exc:
        ledger.spend("shop", "alice", "points", 10, key="s1", at=T0 + DAY)
    assert exc.value.code is RejectionCode.INSUFFICIENT_POINTS


def test_earn_with_pending_until_in_the_past_is_available_at_once(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 80, key="e1", at=T0, pending_until=T0 - DAY)
    assert bal(ledger) == (80, 0, 0, 0)


def test_release_makes_pending_points_available(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 80, key="e1", at=T0, pending_until=T0 + 14 * DAY)
    r = ledger.release("shop", e.transaction_id, key="rel1", at=T0 + 2 * DAY)
    assert (r.kind, r.points, r.available_after, r.pending_after) == ("release", 80, 80, 0)
    assert bal(ledger, at=T0 + 3 * DAY) == (80, 0, 0, 0)


def test_release_of_non_pending_earn_is_rejected(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 80, key="e1", at=T0)
    with pytest.raises(Rejected) as exc:
        ledger.release("shop", e.transaction_id, key="rel1")
    assert exc.value.code is RejectionCode.NOT_PENDING


def test_release_due_releases_only_lots_whose_window_closed(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 10, key="e1", at=T0, pending_until=T0 + 5 * DAY)
    ledger.earn("shop", "alice", "points", 20, key="e2", at=T0, pending_until=T0 + 9 * DAY)
    report = ledger.release_due("shop", T0 + 6 * DAY)
    assert (report.transactions, report.points) == (1, {"points": 10})
    assert bal(ledger, at=T0 + 6 * DAY) == (10, 20, 0, 0)
    again = ledger.release_due("shop", T0 + 6 * DAY)
    assert (again.transactions, again.points) == (0, {})


def test_spend_consumes_soonest_expiring_lots_first(ledger: CheckedLedger) -> None:
    late = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 300 * DAY)
    never = ledger.earn("shop", "alice", "points", 100, key="e2", at=T0)
    soon = ledger.earn("shop", "alice", "points", 100, key="e3", at=T0, expires_at=T0 + 30 * DAY)
    r = ledger.spend("shop", "alice", "points", 150, key="s1", at=T0 + DAY)
    assert [(m.lot_id, m.points) for m in r.lot_moves] == [
        (soon.lot_moves[0].lot_id, -100),
        (late.lot_moves[0].lot_id, -50),
    ]
    r2 = ledger.spend("shop", "alice", "points", 100, key="s2", at=T0 + DAY)
    assert [(m.lot_id, m.points) for m in r2.lot_moves] == [
        (late.lot_moves[0].lot_id, -50),
        (never.lot_moves[0].lot_id, -50),
    ]
    assert r2.available_after == 50
    assert bal(ledger) == (50, 0, 0, 0)


def test_spend_more_than_available_is_rejected(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    with pytest.raises(Rejected) as exc:
        ledger.spend("shop", "alice", "points", 101, key="s1", at=T0 + DAY)
    assert exc.value.code is RejectionCode.INSUFFICIENT_POINTS
    assert exc.value.detail == {"available": 100, "requested": 101}
    assert bal(ledger) == (100, 0, 0, 0)


def test_spend_ignores_lots_past_their_expiry_date(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    with pytest.raises(Rejected) as exc:
        ledger.spend("shop", "alice", "points", 1, key="s1", at=T0 + 10 * DAY)
    assert exc.value.code is RejectionCode.INSUFFICIENT_POINTS
    assert bal(ledger, at=T0 + 9 * DAY) == (100, 0, 100, 0)
    assert bal(ledger, at=T0 + 10 * DAY) == (0, 0, 0, 0)


def test_currencies_are_separate_balances(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.earn("shop", "alice", "miles", 7, key="e2", at=T0)
    with pytest.raises(Rejected) as exc:
        ledger.spend("shop", "alice", "miles", 8, key="s1", at=T0 + DAY)
    assert exc.value.code is RejectionCode.INSUFFICIENT_POINTS
    assert bal(ledger, currency="miles") == (7, 0, 0, 0)


def test_expire_moves_due_remainders_out_with_an_expiry_posting(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.earn("shop", "alice", "points", 40, key="e2", at=T0, expires_at=T0 + 50 * DAY)
    ledger.earn("shop", "bob", "points", 30, key="e3", at=T0, expires_at=T0 + 10 * DAY)
    ledger.spend("shop", "alice", "points", 60, key="s1", at=T0 + DAY)
    report = ledger.expire("shop", T0 + 10 * DAY)
    assert (report.transactions, report.lots, report.points) == (2, 2, {"points": 70})
    assert bal(ledger, at=T0 + 11 * DAY) == (40, 0, 0, 0)  # day 50 is beyond the 30-day window
    assert bal(ledger, "bob", at=T0 + 11 * DAY) == (0, 0, 0, 0)
    history = ledger.history("shop", "alice")
    assert (history[0].kind, history[0].available_change, history[0].reason) == (
        "expire", -40, "points expired",
    )  # fmt: skip


def test_expire_rerun_on_the_same_date_changes_nothing(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    assert ledger.expire("shop", T0 + 10 * DAY).points == {"points": 100}
    again = ledger.expire("shop", T0 + 10 * DAY)
    assert (again.transactions, again.points) == (0, {})


def test_expire_rerun_on_the_same_date_expires_points_put_back_since(
    ledger: CheckedLedger,
) -> None:
    """A redemption cancelled after the run refills a lot past its date: the same job
    run again (same as_of) expires those points instead of replaying the first answer."""
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    spend = ledger.spend("shop", "alice", "points", 30, key="s1", at=T0 + DAY)
    assert ledger.expire("shop", T0 + 10 * DAY).points == {"points": 70}
    ledger.reverse("shop", spend.transaction_id, key="r1", at=T0 + 10 * DAY)
    assert bal(ledger, at=T0 + 10 * DAY) == (0, 0, 0, 0)  # past its date: not spendable
    again = ledger.expire("shop", T0 + 10 * DAY)
    assert (again.transactions, again.lots, again.points) == (1, 1, {"points": 30})
    assert ledger.expire("shop", T0 + 10 * DAY).points == {}
    with ledger.db.read() as conn:
        assert conn.execute(text("SELECT remaining, state FROM lots")).all() == [(0, "expired")]


def test_expire_before_expiry_date_expires_nothing(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    assert ledger.expire("shop", T0 + 9 * DAY).points == {}
    assert bal(ledger, at=T0 + 9 * DAY) == (100, 0, 100, 0)


def test_adjust_credit_records_actor_and_reason(ledger: CheckedLedger) -> None:
    r = ledger.adjust("shop", "alice", "points", 500, key="g1", at=T0, reason="outage 2026-01-01",
                      actor="ops@shop")  # fmt: skip
    assert (r.kind, r.direction, r.available_after) == ("adjust", "credit", 500)
    entry = ledger.history("shop", "alice")[0]
    assert (entry.reason, entry.actor, entry.available_change) == (
        "outage 2026-01-01",
        "ops@shop",
        500,
    )


def test_adjust_debit_draws_lots_and_is_refused_when_short(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    r = ledger.adjust("shop", "alice", "points", -30, key="a1", at=T0, reason="correction",
                      actor="support:jo")  # fmt: skip
    assert (r.direction, r.points, r.available_after) == ("debit", 30, 70)
    with pytest.raises(Rejected) as exc:
        ledger.adjust("shop", "alice", "points", -71, key="a2", at=T0, reason="x", actor="y")
    assert exc.value.code is RejectionCode.INSUFFICIENT_POINTS


def test_reverse_earn_fully_when_unspent(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    r = ledger.reverse("shop", e.transaction_id, key="r1", at=T0 + DAY, reason="refund order:1")
    assert (r.kind, r.direction, r.points, r.reverses_id, r.available_after) == (
        "reverse", "debit", 100, e.transaction_id, 0,
    )  # fmt: skip
    assert ledger.history("shop", "alice")[1].reversed_points == 100


def test_reverse_partially_then_rest(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.reverse("shop", e.transaction_id, key="r1", points=30, at=T0 + DAY)
    assert bal(ledger) == (70, 0, 0, 0)
    ledger.reverse("shop", e.transaction_id, key="r2", at=T0 + DAY)
    assert bal(ledger) == (0, 0, 0, 0)
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", e.transaction_id, key="r3", points=1, at=T0 + DAY)
    assert exc.value.code is RejectionCode.REVERSAL_EXCEEDS_ORIGINAL


def test_reverse_more_than_original_is_rejected(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", e.transaction_id, key="r1", points=101)
    assert exc.value.code is RejectionCode.REVERSAL_EXCEEDS_ORIGINAL
    assert exc.value.detail == {"reversible": 100}


def test_reverse_pending_earn_takes_from_pending(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, pending_until=T0 + 9 * DAY)
    ledger.reverse("shop", e.transaction_id, key="r1", points=40, at=T0 + DAY)
    assert bal(ledger) == (0, 60, 0, 0)


def test_reverse_spent_earn_with_reject_policy_is_refused(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.spend("shop", "alice", "points", 70, key="s1", at=T0 + DAY)
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", e.transaction_id, key="r1", at=T0 + DAY)
    assert exc.value.code is RejectionCode.POINTS_ALREADY_SPENT
    assert exc.value.detail == {"shortfall": 70}


def test_reverse_spent_earn_within_balance_takes_other_lots_then_writes_off(
    ledger: CheckedLedger,
) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 20 * DAY)
    ledger.spend("shop", "alice", "points", 90, key="s1", at=T0 + DAY)
    ledger.earn("shop", "alice", "points", 50, key="e2", at=T0 + 2 * DAY)
    r = ledger.reverse("shop", e.transaction_id, key="r1", shortfall="within_balance",
                       at=T0 + 3 * DAY)  # fmt: skip
    assert (r.shortfall, r.written_off, r.debt_added, r.available_after) == (90, 40, 0, 0)
    assert bal(ledger, at=T0 + 3 * DAY) == (0, 0, 0, 0)
    assert ledger.history("shop", "alice")[0].detail == {  # where the shortfall went
        "shortfall": 90, "policy": "within_balance", "from_other_points": 50,
        "written_off": 40, "debt_added": 0,
    }  # fmt: skip


def test_reverse_spent_earn_with_debt_policy_records_debt_repaid_by_next_earn(
    ledger: CheckedLedger,
) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.spend("shop", "alice", "points", 70, key="s1", at=T0 + DAY)
    r = ledger.reverse("shop", e.transaction_id, key="r1", shortfall="debt", at=T0 + DAY)
    assert (r.shortfall, r.debt_added, r.debt_after, r.available_after) == (70, 70, 70, 0)
    assert bal(ledger) == (0, 0, 0, 70)
    assert ledger.history("shop", "alice")[0].detail == {
        "shortfall": 70, "policy": "debt", "from_other_points": 0, "written_off": 0,
        "debt_added": 70,
    }  # fmt: skip
    e2 = ledger.earn("shop", "alice", "points", 50, key="e2", at=T0 + 2 * DAY)
    assert (e2.debt_repaid, e2.available_after, e2.debt_after) == (50, 0, 20)
    e3 = ledger.earn("shop", "alice", "points", 50, key="e3", at=T0 + 2 * DAY)
    assert (e3.debt_repaid, e3.available_after, e3.debt_after) == (20, 30, 0)


def test_pending_points_repay_debt_when_released(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.spend("shop", "alice", "points", 100, key="s1", at=T0)
    ledger.reverse("shop", e.transaction_id, key="r1", shortfall="debt", points=30, at=T0)
    held = ledger.earn("shop", "alice", "points", 50, key="e2", at=T0, pending_until=T0 + 5 * DAY)
    assert held.debt_repaid == 0
    rel = ledger.release("shop", held.transaction_id, key="rel", at=T0 + 5 * DAY)
    assert (rel.debt_repaid, rel.available_after, rel.debt_after) == (30, 20, 0)


def test_reverse_spend_returns_points_to_the_lots_they_came_from(ledger: CheckedLedger) -> None:
    a = ledger.earn("shop", "alice", "points", 50, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    b = ledger.earn("shop", "alice", "points", 50, key="e2", at=T0, expires_at=T0 + 90 * DAY)
    s = ledger.spend("shop", "alice", "points", 80, key="s1", at=T0 + DAY)
    r = ledger.reverse("shop", s.transaction_id, key="r1", points=40, at=T0 + 2 * DAY)
    assert (r.direction, r.available_after) == ("credit", 60)
    assert [(m.lot_id, m.points) for m in r.lot_moves] == [
        (b.lot_moves[0].lot_id, 30),
        (a.lot_moves[0].lot_id, 10),
    ]
    rest = ledger.reverse("shop", s.transaction_id, key="r2", at=T0 + 2 * DAY)
    assert [(m.lot_id, m.points) for m in rest.lot_moves] == [(a.lot_moves[0].lot_id, 40)]
    assert bal(ledger, at=T0 + 2 * DAY) == (100, 0, 50, 0)


def test_reverse_expiry_restores_expired_points(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.expire("shop", T0 + 10 * DAY)
    expiry = ledger.history("shop", "alice")[0]
    r = ledger.reverse("shop", expiry.transaction_id, key="r1", at=T0 + 11 * DAY)
    assert (r.direction, r.points, r.lot_moves[0].points) == ("credit", 100, 100)
    # back in a lot past its date: in the account, not available (as the balance says)
    assert r.available_after == bal(ledger, at=T0 + 11 * DAY)[0] == 0


def test_reverse_of_reversal_or_release_is_not_reversible(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, pending_until=T0 + DAY)
    rel = ledger.release("shop", e.transaction_id, key="rel", at=T0 + DAY)
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", rel.transaction_id, key="r1")
    assert exc.value.code is RejectionCode.NOT_REVERSIBLE
    r = ledger.reverse("shop", e.transaction_id, key="r2", points=10)
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", r.transaction_id, key="r3")
    assert exc.value.code is RejectionCode.NOT_REVERSIBLE


def test_reverse_unknown_transaction_is_rejected(ledger: CheckedLedger) -> None:
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", 999, key="r1")
    assert (exc.value.code, exc.value.field) == (
        RejectionCode.UNKNOWN_TRANSACTION,
        "transaction_id",
    )


def test_transactions_of_another_program_are_invisible(ledger: CheckedLedger) -> None:
    ledger.open_program("cafe", ["points"])
    ledger.create_member("cafe", "alice")
    e = ledger.earn("cafe", "alice", "points", 100, key="e1", at=T0)
    with pytest.raises(Rejected) as exc:
        ledger.reverse("shop", e.transaction_id, key="r1")
    assert exc.value.code is RejectionCode.UNKNOWN_TRANSACTION
    assert bal(ledger) == (0, 0, 0, 0)


def test_history_lists_every_move_newest_first_with_reason_and_source(
    ledger: CheckedLedger,
) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, source="order:9",
                    reason="purchase", detail={"store": "paris-1"})  # fmt: skip
    ledger.spend("shop", "alice", "points", 30, key="s1", at=T0 + DAY, reason="reward:coffee")
    ledger.reverse("shop", e.transaction_id, key="r1", points=10, at=T0 + 2 * DAY, reason="refund")
    rows = [
        (h.kind, h.available_change, h.reason, h.source, h.reverses_id, h.detail)
        for h in ledger.history("shop", "alice")
    ]
    assert rows == [
        ("reverse", -10, "refund", None, e.transaction_id, None),
        ("spend", -30, "reward:coffee", None, None, None),
        ("earn", 100, "purchase", "order:9", None, {"store": "paris-1"}),
    ]
    page = ledger.history("shop", "alice", limit=1, before_id=rows and e.transaction_id + 1)
    assert [h.transaction_id for h in page] == [e.transaction_id]


def test_balance_expiring_soon_uses_the_window(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 10, key="e1", at=T0, expires_at=T0 + 20 * DAY)
    ledger.earn("shop", "alice", "points", 20, key="e2", at=T0, expires_at=T0 + 40 * DAY)
    b = ledger.balance("shop", "alice", "points", as_of=T0 + DAY, soon_days=30)
    assert (b.available, b.expiring_soon, b.next_expiry) == (30, 10, T0 + 20 * DAY)
    b60 = ledger.balance("shop", "alice", "points", as_of=T0 + DAY, soon_days=60)
    assert b60.expiring_soon == 30


def test_reverse_spend_repays_debt_before_refilling_lots(ledger: CheckedLedger) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    s = ledger.spend("shop", "alice", "points", 100, key="s1", at=T0)
    ledger.reverse("shop", e.transaction_id, key="r1", shortfall="debt", at=T0)
    assert bal(ledger) == (0, 0, 0, 100)
    r = ledger.reverse("shop", s.transaction_id, key="r2", points=60, at=T0)
    assert (r.debt_repaid, r.lot_moves, r.available_after, r.debt_after) == (60, (), 0, 40)
    r2 = ledger.reverse("shop", s.transaction_id, key="r3", at=T0)
    assert (r2.debt_repaid, r2.available_after, r2.debt_after) == (40, 0, 0)
    assert bal(ledger) == (0, 0, 0, 0)


def program_totals(ledger: CheckedLedger) -> dict[str, int]:
    """The program-side accounts' balances (the sums of their postings), by kind."""
    with ledger.db.read() as conn:
        rows = conn.execute(text(
            "SELECT a.kind, COALESCE(SUM(p.points), 0) FROM accounts a "
            "LEFT JOIN postings p ON p.account_id = a.id "
            "WHERE a.member_id IS NULL AND a.program_id = 'shop' AND a.currency = 'points' "
            "GROUP BY a.kind"
        ))  # fmt: skip
        return {kind: int(points) for kind, points in rows if points}


@pytest.mark.parametrize("policy", ["reject", "within_balance", "debt"])
def test_reverse_earn_whose_points_expired_takes_nothing_and_is_no_shortfall(
    ledger: CheckedLedger, policy: str
) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.expire("shop", T0 + 10 * DAY)
    ledger.earn("shop", "alice", "points", 80, key="e2", at=T0 + 11 * DAY)
    r = ledger.reverse("shop", e.transaction_id, key="r1", shortfall=policy, at=T0 + 12 * DAY)
    assert (r.points, r.already_expired, r.shortfall, r.written_off, r.debt_added) == (
        100, 100, 0, 0, 0,
    )  # fmt: skip
    assert (r.available_after, r.debt_after, r.lot_moves) == (80, 0, ())
    assert bal(ledger, at=T0 + 12 * DAY) == (80, 0, 0, 0)
    # the points of the reversed earn are neither issued nor expired any more
    assert program_totals(ledger) == {"issued": -80}


def test_reverse_earn_partly_spent_partly_expired_counts_the_expired_part_once(
    ledger: CheckedLedger,
) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.spend("shop", "alice", "points", 30, key="s1", at=T0 + DAY)
    ledger.expire("shop", T0 + 10 * DAY)  # the other 70 expire
    ledger.earn("shop", "alice", "points", 50, key="e2", at=T0 + 11 * DAY)
    at = T0 + 12 * DAY
    receipts = [
        ledger.reverse(
            "shop", e.transaction_id, key=f"r{n}", points=50, shortfall="within_balance", at=at
        )
        for n in (1, 2)
    ]
    # first the expired part (nothing to take), then the 30 spent: a shortfall, taken
    # from the other lot
    assert [(r.already_expired, r.shortfall, r.written_off, r.available_after)
            for r in receipts] == [(50, 0, 0, 50), (20, 30, 0, 20)]  # fmt: skip
    # both reversals are in the member's history, the first though it moved none of
    # their points, each saying what had expired and where a shortfall went
    assert [(h.kind, h.available_change, h.detail)
            for h in ledger.history("shop", "alice")[:2]] == [
        ("reverse", -30, {"already_expired": 20, "shortfall": 30, "policy": "within_balance",
                          "from_other_points": 30, "written_off": 0, "debt_added": 0}),
        ("reverse", 0, {"already_expired": 50}),
    ]  # fmt: skip
    assert program_totals(ledger) == {"issued": -50, "redeemed": 30}
    expiry = next(h for h in ledger.history("shop", "alice") if h.kind == "expire")
    with pytest.raises(Rejected) as refused:  # every expired point belongs to the reversed earn
        ledger.reverse("shop", expiry.transaction_id, key="x1", at=at)
    assert refused.value.code is RejectionCode.REVERSAL_EXCEEDS_ORIGINAL
    assert refused.value.detail == {"reversible": 0}


def test_reverse_expiry_puts_back_only_what_no_reversal_of_the_earn_claimed(
    ledger: CheckedLedger,
) -> None:
    e = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.expire("shop", T0 + 10 * DAY)
    expiry = ledger.history("shop", "alice")[0]
    at = T0 + 11 * DAY
    first = ledger.reverse("shop", e.transaction_id, key="r1", points=40, at=at)
    assert (first.already_expired, first.available_after) == (40, 0)
    with pytest.raises(Rejected) as refused:
        ledger.reverse("shop", expiry.transaction_id, key="x1", at=at)
    assert (refused.value.code, refused.value.detail) == (
        RejectionCode.REVERSAL_EXCEEDS_ORIGINAL, {"reversible": 60},
    )  # fmt: skip
    back = ledger.reverse("shop", expiry.transaction_id, key="x2", points=60, at=at)
    assert (back.lot_moves[0].points, back.available_after) == (60, 0)  # the lot is past date
    rest = ledger.reverse("shop", e.transaction_id, key="r2", at=at)  # now from the lot again
    assert (rest.points, rest.already_expired, rest.shortfall, rest.available_after) == (
        60, 0, 0, 0,
    )  # fmt: skip
    assert program_totals(ledger) == {}
