"""Reversing an earn (a refund's clawback) under an inactivity policy before the expiry
job has run: a shortfall is never taken from points that lapsed, which the member could
not spend; it is written off or owed instead, per policy. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from fidelite.ledger import assert_invariants
from fidelite.ledger.service import JobReport
from fidelite.program.policy import ExpiryPolicy
from tests.support import T0, CheckedLedger

MONTHLY = ExpiryPolicy(mode="inactivity", months=1)
REFUND_AT = "2026-02-10T00:00:00+00:00"  # the points of 3 January lapsed on 3 February


def lots(ledger: CheckedLedger) -> list[tuple[int, int, str]]:
    with ledger.db.read() as conn:
        rows = conn.execute(text("SELECT points, remaining, state FROM lots ORDER BY id")).all()
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


def spent_purchase(ledger: CheckedLedger) -> int:
    """alice earns 50 (the purchase to refund) and spends them; 100 more on 3 January,
    then nothing: those 100 lapse on 3 February. The 50's earn transaction id."""
    earned = ledger.earn("shop", "alice", "points", 50, key="e1", at=T0)
    ledger.spend("shop", "alice", "points", 50, key="s1", at="2026-01-02")
    ledger.earn("shop", "alice", "points", 100, key="e2", at="2026-01-03")
    return earned.transaction_id


def clawback(ledger: CheckedLedger, tid: int, shortfall: str, **kw: Any) -> tuple[int, ...]:
    r = ledger.reverse("shop", tid, key=f"r-{shortfall}", shortfall=shortfall, at=REFUND_AT, **kw)
    return (r.points, r.written_off, r.debt_added, r.already_expired)


def expire(ledger: CheckedLedger) -> tuple[int, int, dict[str, int]]:
    report: JobReport = ledger.expire("shop", REFUND_AT, policy=MONTHLY)
    return (report.transactions, report.lots, report.points)


def test_within_balance_writes_off_instead_of_taking_lapsed_points(ledger: CheckedLedger) -> None:
    tid = spent_purchase(ledger)
    assert clawback(ledger, tid, "within_balance", policy=MONTHLY) == (50, 50, 0, 0)
    assert lots(ledger) == [(50, 0, "spent"), (100, 100, "available")]
    detail = ledger.history("shop", "alice")[0].detail
    assert detail == {"shortfall": 50, "policy": "within_balance", "from_other_points": 0,
                      "written_off": 50, "debt_added": 0}  # fmt: skip
    # the lapsed 100 are the job's to move out, once
    assert expire(ledger) == (1, 1, {"points": 100})
    assert lots(ledger) == [(50, 0, "spent"), (100, 0, "expired")]
    assert_invariants(ledger.db, "shop")


def test_debt_is_added_instead_of_taking_lapsed_points(ledger: CheckedLedger) -> None:
    tid = spent_purchase(ledger)
    assert clawback(ledger, tid, "debt", policy=MONTHLY) == (50, 0, 50, 0)
    b = ledger.balance("shop", "alice", "points", as_of=REFUND_AT, policy=MONTHLY)
    assert (b.available, b.debt) == (0, 50)
    assert lots(ledger) == [(50, 0, "spent"), (100, 100, "available")]
    assert expire(ledger) == (1, 1, {"points": 100})
    assert_invariants(ledger.db, "shop")


def test_points_earned_since_the_lapse_pay_first(ledger: CheckedLedger) -> None:
    tid = spent_purchase(ledger)
    ledger.earn("shop", "alice", "points", 20, key="e3", at="2026-02-05")  # back too late
    assert clawback(ledger, tid, "within_balance", policy=MONTHLY) == (50, 30, 0, 0)
    assert lots(ledger) == [(50, 0, "spent"), (100, 100, "available"), (20, 0, "spent")]
    assert expire(ledger) == (1, 1, {"points": 100})
    assert_invariants(ledger.db, "shop")


def test_before_the_lapse_other_points_pay_as_before(ledger: CheckedLedger) -> None:
    tid = spent_purchase(ledger)
    r = ledger.reverse("shop", tid, key="r", shortfall="within_balance", at="2026-02-02",
                       policy=MONTHLY)  # fmt: skip
    assert (r.points, r.written_off, r.debt_added) == (50, 0, 0)
    assert lots(ledger) == [(50, 0, "spent"), (100, 50, "available")]


def test_without_a_policy_the_reversal_is_unchanged(ledger: CheckedLedger) -> None:
    tid = spent_purchase(ledger)
    assert clawback(ledger, tid, "within_balance") == (50, 0, 0, 0)
    assert lots(ledger) == [(50, 0, "spent"), (100, 50, "available")]
    assert_invariants(ledger.db, "shop")
