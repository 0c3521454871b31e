"""Cancelling a spend whose points a refund wrote off (``within_balance``: they were
spent when the purchase was refunded) gives the member nothing back: the cancellation
restores the write-off instead, as under ``debt`` it repays the debt the refund
recorded. The member ends where they end under ``debt``. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from tests.support import CheckedLedger


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T12:00:00+00:00")


def program_totals(ledger: CheckedLedger) -> dict[str, int]:
    with ledger.db.read() as conn:
        rows = conn.execute(text(
            "SELECT a.kind, COALESCE(SUM(p.points), 0) FROM accounts a "
            "LEFT JOIN postings p ON p.account_id = a.id "
            "WHERE a.member_id IS NULL AND a.program_id = 'shop' AND a.currency = 'points' "
            "GROUP BY a.kind"
        ))  # fmt: skip
        return {kind: int(points) for kind, points in rows if points}


def balance(ledger: CheckedLedger) -> tuple[int, int]:
    b = ledger.balance("shop", "alice", "points", as_of=at("12-01"))
    return b.available, b.debt


def test_a_full_refund_then_the_cancellation_leaves_the_member_at_zero(
    ledger: CheckedLedger,
) -> None:
    earn = ledger.earn("shop", "alice", "points", 100, key="e1", at=at("03-01"))
    spend = ledger.spend("shop", "alice", "points", 60, key="s1", at=at("03-02"))
    refund = ledger.reverse("shop", earn.transaction_id, key="r1", shortfall="within_balance",
                            at=at("03-03"))  # fmt: skip
    assert (refund.points, refund.written_off) == (100, 60)
    cancel = ledger.reverse("shop", spend.transaction_id, key="c1", at=at("03-04"))
    assert (cancel.points, cancel.available_after, cancel.debt_repaid) == (60, 0, 0)
    assert cancel.lot_moves == ()
    assert balance(ledger) == (0, 0)
    assert program_totals(ledger) == {}  # issued, redeemed and written off all back to 0
    entry = ledger.history("shop", "alice", limit=1)[0]
    assert entry.detail == {"written_off_restored": 60,
                            "written_off_restored_lots": {str(_lot(ledger)): 60}}  # fmt: skip
    assert entry.available_change == 0


def _lot(ledger: CheckedLedger) -> int:
    with ledger.db.read() as conn:
        return int(conn.execute(text("SELECT MIN(id) FROM lots")).scalar_one())


def test_the_outcome_is_that_of_debt(ledger: CheckedLedger) -> None:
    for member, policy in (("alice", "within_balance"), ("bob", "debt")):
        earn = ledger.earn("shop", member, "points", 100, key=f"e-{member}", at=at("03-01"))
        spend = ledger.spend("shop", member, "points", 60, key=f"s-{member}", at=at("03-02"))
        ledger.reverse("shop", earn.transaction_id, key=f"r-{member}", points=50,
                       shortfall=policy, at=at("03-03"))  # fmt: skip
        ledger.reverse("shop", spend.transaction_id, key=f"c-{member}", at=at("03-04"))
    for member in ("alice", "bob"):
        b = ledger.balance("shop", member, "points", as_of=at("12-01"))
        assert (b.available, b.debt) == (50, 0)  # the 50 points not refunded


def test_partial_cancellations_restore_the_write_off_once(ledger: CheckedLedger) -> None:
    earn = ledger.earn("shop", "alice", "points", 100, key="e1", at=at("03-01"))
    first = ledger.spend("shop", "alice", "points", 30, key="s1", at=at("03-02"))
    second = ledger.spend("shop", "alice", "points", 30, key="s2", at=at("03-02"))
    ledger.earn("shop", "alice", "points", 20, key="e2", at=at("03-02"))
    refund = ledger.reverse("shop", earn.transaction_id, key="r1", shortfall="within_balance",
                            at=at("03-03"))  # fmt: skip
    assert (refund.shortfall, refund.written_off) == (60, 40)  # 20 from the other lot
    assert balance(ledger) == (0, 0)
    ledger.reverse("shop", first.transaction_id, key="c1", points=10, at=at("03-04"))
    ledger.reverse("shop", first.transaction_id, key="c2", at=at("03-04"))
    assert balance(ledger) == (0, 0)
    assert program_totals(ledger)["written_off"] == -10
    ledger.reverse("shop", second.transaction_id, key="c3", at=at("03-04"))
    # 40 written off restored, the 20 the member paid from the other lot come back
    assert balance(ledger) == (20, 0)
    assert "written_off" not in program_totals(ledger)
