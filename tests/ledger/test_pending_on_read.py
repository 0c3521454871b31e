"""Points whose hold (return window) has ended are available at once, before the daily
release job runs: the balance counts them, a debit releases them first (the job's own
entry, under the member's lock, in the debit's transaction) and its receipt counts what
the member truly holds. On a SQLite file and on PostgreSQL.

The hold has ended at ``at`` when ``pending_until <= at``, the rule of
``Ledger.release_due`` (and of an earn whose ``pending_until`` is not after its time).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected, RejectionCode, assert_invariants
from fidelite.ledger.receipts import Receipt
from fidelite.ledger.service import JobReport
from fidelite.program.policy import ExpiryPolicy
from tests.support import T0, CheckedLedger, snapshot

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
HOLD_END = T0 + 14 * DAY
LATER = HOLD_END + HOUR  # the hold ended an hour ago
MONTHLY = ExpiryPolicy(mode="inactivity", months=1)


def held(ledger: CheckedLedger, at: datetime, **kw: Any) -> tuple[int, int, dict[str, int]]:
    b = ledger.balance("shop", "alice", "points", as_of=at, **kw)
    return (b.available, b.pending, b.debt)


def after(receipt: Receipt) -> tuple[int, int, int]:
    return (receipt.available_after, receipt.pending_after, receipt.debt_after)


def job(ledger: CheckedLedger, at: datetime) -> tuple[int, int, int]:
    report: JobReport = ledger.release_due("shop", at)
    return (report.transactions, report.lots, report.points)


def entries(ledger: CheckedLedger, member: str = "alice") -> list[tuple[Any, ...]]:
    """The member's transactions, oldest first: id, kind, key, points, time."""
    with ledger.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT t.id, t.kind, t.idempotency_key, t.points, t.occurred_at "
                "FROM ledger_transactions t JOIN members m ON m.id = t.member_id "
                "WHERE m.ref = :r ORDER BY t.id"
            ),
            {"r": member},
        ).all()
    return [(int(r[0]), str(r[1]), str(r[2]), int(r[3]), _utc(r[4])) for r in rows]


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=T0.tzinfo) if value.tzinfo is None else value


def lots(ledger: CheckedLedger) -> list[tuple[int, int, str]]:
    with ledger.db.read() as conn:
        rows = conn.execute(text("SELECT points, remaining, state FROM lots ORDER BY id")).all()
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


def held_back(ledger: CheckedLedger) -> tuple[Receipt, Receipt]:
    """20 available at once, 100 held until HOLD_END."""
    free = ledger.earn("shop", "alice", "points", 20, key="free", at=T0)
    hold = ledger.earn("shop", "alice", "points", 100, key="hold", at=T0, pending_until=HOLD_END)
    return free, hold


# ------------------------------------------------------------------------- balance


def test_balance_counts_points_whose_hold_ended_as_available(ledger: CheckedLedger) -> None:
    held_back(ledger)
    assert held(ledger, HOLD_END - HOUR) == (20, 100, 0)
    assert held(ledger, HOLD_END) == (120, 0, 0)  # the boundary: ended at pending_until
    assert held(ledger, LATER) == (120, 0, 0)
    assert lots(ledger) == [(20, 20, "available"), (100, 100, "pending")]  # nothing written
    assert job(ledger, LATER) == (1, 1, {"points": 100})
    assert held(ledger, LATER) == (120, 0, 0)  # the same once the job has run


def test_balance_repays_debt_from_points_whose_hold_ended(ledger: CheckedLedger) -> None:
    """As their release will: a member owing 30 holds 20 of an ended hold of 50."""
    bought = ledger.earn("shop", "alice", "points", 40, key="e1", at=T0)
    ledger.spend("shop", "alice", "points", 40, key="s1", at=T0)
    ledger.reverse("shop", bought.transaction_id, key="r1", shortfall="debt", at=T0 + DAY)
    ledger.earn("shop", "alice", "points", 50, key="e2", at=T0 + DAY, pending_until=HOLD_END)
    assert held(ledger, HOLD_END - HOUR) == (0, 50, 40)
    assert held(ledger, LATER) == (10, 0, 0)
    spent = ledger.spend("shop", "alice", "points", 10, key="s2", at=LATER)
    assert after(spent) == (0, 0, 0)
    assert held(ledger, LATER) == (0, 0, 0)
    assert [e[1] for e in entries(ledger)] == ["earn", "spend", "reverse", "earn", "release",
                                               "spend"]  # fmt: skip


def test_ended_hold_past_its_expiry_date_is_not_available(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 70, key="e1", at=T0, pending_until=HOLD_END,
                expires_at=HOLD_END + DAY)  # fmt: skip
    assert held(ledger, HOLD_END) == (70, 0, 0)
    assert held(ledger, HOLD_END + DAY) == (0, 0, 0)  # released, then expired: gone
    b = ledger.balance("shop", "alice", "points", as_of=LATER, soon_days=2)
    assert (b.expiring_soon, b.next_expiry) == (70, HOLD_END + DAY)


# -------------------------------------------------------------------------- spend


def test_spend_of_points_whose_hold_ended_an_hour_ago_releases_them(
    ledger: CheckedLedger,
) -> None:
    free, hold = held_back(ledger)
    spent = ledger.spend("shop", "alice", "points", 110, key="s1", at=LATER)
    assert (spent.kind, spent.points) == ("spend", 110)
    assert after(spent) == (10, 0, 0)
    release_id = hold.transaction_id + 1
    assert entries(ledger) == [
        (free.transaction_id, "earn", "free", 20, T0),
        (hold.transaction_id, "earn", "hold", 100, T0),
        (release_id, "release", f"release:{hold.transaction_id}", 100, LATER),
        (spent.transaction_id, "spend", "s1", 110, LATER),
    ]
    assert spent.transaction_id == release_id + 1
    history = ledger.history("shop", "alice")  # newest first
    assert [(h.kind, h.available_change, h.pending_change) for h in history] == [
        ("spend", -110, 0), ("release", 100, -100), ("earn", 0, 100), ("earn", 20, 0),
    ]  # fmt: skip
    assert history[1].detail == {"earn_transaction_id": hold.transaction_id}
    assert held(ledger, LATER) == (10, 0, 0)
    assert lots(ledger) == [(20, 0, "spent"), (100, 10, "available")]
    # the job finds the lot released: it writes nothing, however often it runs
    assert job(ledger, LATER) == (0, 0, {})
    assert job(ledger, LATER + DAY) == (0, 0, {})
    assert len(entries(ledger)) == 4
    # the release is the job's entry: the job's own call for it is not a new request
    with pytest.raises(Rejected) as caught:
        ledger.release("shop", hold.transaction_id, key=f"release:{hold.transaction_id}",
                       at=LATER + DAY)  # fmt: skip
    assert caught.value.code is RejectionCode.IDEMPOTENCY_CONFLICT
    replay = ledger.release("shop", hold.transaction_id, key=f"release:{hold.transaction_id}",
                            at=LATER)  # fmt: skip
    assert (replay.replayed, replay.transaction_id, after(replay)) == (True, release_id,
                                                                      (120, 0, 0))  # fmt: skip


def test_spend_releases_a_hold_ending_exactly_at_its_time(ledger: CheckedLedger) -> None:
    held_back(ledger)
    ledger.earn("shop", "alice", "points", 5, key="e3", at=T0, pending_until=HOLD_END + HOUR)
    spent = ledger.spend("shop", "alice", "points", 120, key="s1", at=HOLD_END)
    assert after(spent) == (0, 5, 0)
    assert [e[1:3] for e in entries(ledger)][2:] == [("earn", "e3"), ("release", "release:2"),
                                                     ("spend", "s1")]  # fmt: skip
    assert job(ledger, HOLD_END) == (0, 0, {})
    assert job(ledger, HOLD_END + HOUR) == (1, 1, {"points": 5})


def test_hold_ending_a_second_later_is_not_spendable(ledger: CheckedLedger) -> None:
    held_back(ledger)
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as caught:
        ledger.spend("shop", "alice", "points", 21, key="s1",
                     at=HOLD_END - timedelta(seconds=1))  # fmt: skip
    assert caught.value.code is RejectionCode.INSUFFICIENT_POINTS
    assert caught.value.detail == {
        "available": 20, "requested": 21, "pending": 100,
        "pending_until": HOLD_END.astimezone(UTC).isoformat(),
    }  # fmt: skip
    assert snapshot(ledger.db) == before


def test_refused_spend_changes_nothing_and_keeps_no_release(ledger: CheckedLedger) -> None:
    held_back(ledger)
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as caught:
        ledger.spend("shop", "alice", "points", 121, key="s1", at=LATER)
    assert caught.value.code is RejectionCode.INSUFFICIENT_POINTS
    assert caught.value.detail == {"available": 120, "requested": 121}
    assert caught.value.message == "member 'alice' has 120 points available, 121 requested"
    assert snapshot(ledger.db) == before  # the release was rolled back with the spend
    assert held(ledger, LATER) == (120, 0, 0)
    assert job(ledger, LATER) == (1, 1, {"points": 100})  # still the job's to write
    spent = ledger.spend("shop", "alice", "points", 120, key="s1", at=LATER)  # key not used up
    assert after(spent) == (0, 0, 0)


def test_refused_spend_in_a_callers_transaction_undoes_its_releases(
    ledger: CheckedLedger,
) -> None:
    held_back(ledger)
    before = snapshot(ledger.db)
    with ledger.db.write() as conn:
        with pytest.raises(Rejected):
            ledger.inner.spend("shop", "alice", "points", 121, key="s1", at=LATER, conn=conn)
        spent = ledger.inner.spend("shop", "alice", "points", 15, key="s2", at=LATER, conn=conn)
    assert after(spent) == (105, 0, 0)
    assert [e[1] for e in entries(ledger)] == ["earn", "earn", "release", "spend"]
    assert snapshot(ledger.db) != before
    assert_invariants(ledger.db)


def test_retried_spend_replays_without_releasing_again(ledger: CheckedLedger) -> None:
    held_back(ledger)
    first = ledger.spend("shop", "alice", "points", 30, key="s1", at=LATER)
    again = ledger.spend("shop", "alice", "points", 30, key="s1", at=LATER)
    assert (again.replayed, again) == (True, first)
    assert [e[1] for e in entries(ledger)] == ["earn", "earn", "release", "spend"]


def test_spend_releases_only_its_members_holds_in_its_currency(ledger: CheckedLedger) -> None:
    held_back(ledger)
    ledger.earn("shop", "alice", "miles", 7, key="m1", at=T0, pending_until=HOLD_END)
    ledger.earn("shop", "bob", "points", 9, key="b1", at=T0, pending_until=HOLD_END)
    ledger.spend("shop", "alice", "points", 1, key="s1", at=LATER)
    assert lots(ledger) == [(20, 19, "available"), (100, 100, "available"),
                            (7, 7, "pending"), (9, 9, "pending")]  # fmt: skip
    assert job(ledger, LATER) == (2, 2, {"points": 9, "miles": 7})


# --------------------------------------------------------------- other debits


def test_debit_adjustment_releases_ended_holds(ledger: CheckedLedger) -> None:
    held_back(ledger)
    fixed = ledger.adjust("shop", "alice", "points", -100, key="a1", at=LATER,
                          reason="correction", actor="ops")  # fmt: skip
    assert after(fixed) == (20, 0, 0)
    assert [e[1] for e in entries(ledger)] == ["earn", "earn", "release", "adjust"]
    assert job(ledger, LATER) == (0, 0, {})


def test_credit_adjustment_releases_nothing_but_its_receipt_counts_them(
    ledger: CheckedLedger,
) -> None:
    held_back(ledger)
    credit = ledger.adjust("shop", "alice", "points", 5, key="a1", at=LATER,
                           reason="goodwill", actor="ops")  # fmt: skip
    assert after(credit) == (125, 0, 0)
    assert [e[1] for e in entries(ledger)] == ["earn", "earn", "adjust"]
    assert job(ledger, LATER) == (1, 1, {"points": 100})


def test_reversal_shortfall_draws_points_whose_hold_ended(ledger: CheckedLedger) -> None:
    bought = ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.spend("shop", "alice", "points", 100, key="s1", at=T0)
    ledger.earn("shop", "alice", "points", 60, key="e2", at=T0, pending_until=HOLD_END)
    refund = ledger.reverse("shop", bought.transaction_id, key="r1",
                            shortfall="within_balance", at=LATER)  # fmt: skip
    assert (refund.shortfall, refund.written_off, refund.debt_added) == (100, 40, 0)
    assert after(refund) == (0, 0, 0)
    assert [e[1] for e in entries(ledger)] == ["earn", "spend", "earn", "release", "reverse"]
    assert job(ledger, LATER) == (0, 0, {})


# ------------------------------------------------------------------------ receipts


def test_receipt_leaves_out_points_past_their_date_before_the_expiry_job(
    ledger: CheckedLedger,
) -> None:
    ledger.earn("shop", "alice", "points", 50, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.earn("shop", "alice", "points", 30, key="e2", at=T0, pending_until=T0 + 5 * DAY)
    spent = ledger.spend("shop", "alice", "points", 10, key="s1", at=T0 + 11 * DAY)
    assert after(spent) == (20, 0, 0)  # the 50 are past their date: not available
    assert held(ledger, T0 + 11 * DAY) == (20, 0, 0)


def test_receipt_of_a_refund_into_a_lot_past_its_date_leaves_the_points_out(
    ledger: CheckedLedger,
) -> None:
    """A cancelled redemption refills the lot it drew, past its date by then: those
    points are back in the account until the expiry job runs, but not available."""
    ledger.earn("shop", "alice", "points", 10, key="e1", at=T0, expires_at=T0 + DAY)
    ledger.earn("shop", "alice", "points", 4, key="e2", at=T0)
    spent = ledger.spend("shop", "alice", "points", 12, key="s1", at=T0)
    back = ledger.reverse("shop", spent.transaction_id, key="r1", at=T0 + 2 * DAY)
    assert after(back) == (4, 0, 0)
    assert held(ledger, T0 + 2 * DAY) == (4, 0, 0)
    assert lots(ledger) == [(10, 10, "available"), (4, 4, "available")]


def test_receipt_leaves_out_lapsed_points_given_the_policy(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)  # lapses on 1 February
    back = T0 + 32 * DAY
    credit = ledger.adjust("shop", "alice", "points", 40, key="a1", at=back,
                           reason="goodwill", actor="ops", policy=MONTHLY)  # fmt: skip
    assert after(credit) == (40, 0, 0)
    spent = ledger.spend("shop", "alice", "points", 10, key="s1", at=back + DAY, policy=MONTHLY)
    assert after(spent) == (30, 0, 0)
    assert held(ledger, back + DAY, policy=MONTHLY) == (30, 0, 0)
    assert held(ledger, back + DAY) == (130, 0, 0)  # without the policy: not known


def test_ended_hold_of_points_that_lapsed_is_not_available(ledger: CheckedLedger) -> None:
    """Points earned before the lapse and held past it lapse once their hold ends."""
    ledger.earn("shop", "alice", "points", 25, key="e1", at=T0, pending_until=T0 + 40 * DAY)
    assert held(ledger, T0 + 39 * DAY, policy=MONTHLY) == (0, 25, 0)
    assert held(ledger, T0 + 40 * DAY, policy=MONTHLY) == (0, 0, 0)
    assert held(ledger, T0 + 40 * DAY) == (25, 0, 0)
    with pytest.raises(Rejected) as caught:
        ledger.spend("shop", "alice", "points", 1, key="s1", at=T0 + 40 * DAY, policy=MONTHLY)
    assert caught.value.detail == {"available": 0, "requested": 1, "lapsed": 25,
                                   "lapsed_at": "2026-02-01T00:00:00+00:00"}  # fmt: skip


# --------------------------------------------------------------------- concurrency


def test_release_job_racing_a_spend_skips_the_lot_it_released(ledger: CheckedLedger) -> None:
    """The job reads its lots, a spend releases one of them meanwhile: the job writes
    nothing for it (its key is used, at the spend's time) and releases the others."""
    held_back(ledger)
    bob = ledger.earn("shop", "bob", "points", 9, key="b1", at=T0, pending_until=HOLD_END)
    spent: list[Receipt] = []

    def meanwhile(done: int, total: int) -> None:
        if done == 1:  # alice's lot is released; bob's is next
            spent.append(ledger.inner.spend("shop", "bob", "points", 4, key="b2", at=LATER))

    report = ledger.inner.release_due("shop", LATER + HOUR, progress=meanwhile)
    assert (report.transactions, report.lots, report.points) == (1, 1, {"points": 100})
    assert after(spent[0]) == (5, 0, 0)
    assert [e[1:3] for e in entries(ledger, "bob")] == [
        ("earn", "b1"), ("release", f"release:{bob.transaction_id}"), ("spend", "b2"),
    ]  # fmt: skip
    assert_invariants(ledger.db)


WORKERS = 8


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_spends_release_a_lot_once(ledger: CheckedLedger, round_: int) -> None:
    """Eight spends of 30 at once, all needing the 100 points whose hold ended: three
    succeed, the lot is released once, and the job then has nothing left to do."""
    ledger.earn("shop", "alice", "points", 100, key="hold", at=T0, pending_until=HOLD_END)
    start = threading.Barrier(WORKERS)

    def worker(w: int) -> str:
        start.wait()
        try:
            ledger.inner.spend("shop", "alice", "points", 30, key=f"w{w}", at=LATER)
        except Rejected as rejected:
            return rejected.code.value
        return "ok"

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = sorted(pool.map(worker, range(WORKERS)))
    assert outcomes == ["insufficient_points"] * 5 + ["ok"] * 3
    assert [e[1] for e in entries(ledger)] == ["earn", "release", "spend", "spend", "spend"]
    assert held(ledger, LATER) == (10, 0, 0)
    assert job(ledger, LATER) == (0, 0, {})
    assert lots(ledger) == [(100, 10, "available")]
    assert_invariants(ledger.db)


def test_a_spend_refused_short_of_points_names_what_is_still_pending(
    ledger: CheckedLedger,
) -> None:
    """The member sees 120 points in all but may spend 20: the refusal used to say only
    "20 points available", which reads as lost points. It now names the 100 held and
    when the first of them can be spent."""
    held_back(ledger)
    ledger.earn("shop", "alice", "points", 5, key="later", at=T0, pending_until=HOLD_END + DAY)
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as caught:
        ledger.spend("shop", "alice", "points", 50, key="s1", at=HOLD_END - HOUR)
    assert caught.value.code is RejectionCode.INSUFFICIENT_POINTS
    end = HOLD_END.astimezone(UTC).isoformat()
    assert caught.value.detail == {
        "available": 20, "requested": 50, "pending": 105, "pending_until": end
    }  # fmt: skip
    assert caught.value.message == (
        f"member 'alice' has 20 points available, 50 requested; 105 more pending (the first "
        f"available from {end})"
    )
    assert snapshot(ledger.db) == before
