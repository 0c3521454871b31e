"""Spending and balances under an inactivity policy before the expiry job has run:
points that lapsed are neither spendable nor available, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected, RejectionCode, assert_invariants
from fidelite.ledger.service import JobReport
from fidelite.program.policy import ExpiryPolicy
from tests.support import T0, CheckedLedger, snapshot

DAY = timedelta(days=1)
MONTHLY = ExpiryPolicy(mode="inactivity", months=1)
LAPSED_AT = "2026-02-01T00:00:00+00:00"  # a month after T0, 1 January 2026


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def lapse(ledger: CheckedLedger, as_of: datetime | str) -> tuple[int, int, dict[str, int]]:
    report: JobReport = ledger.expire("shop", as_of, policy=MONTHLY)
    return (report.transactions, report.lots, report.points)


def balance(ledger: CheckedLedger, as_of: str, member: str = "alice", **kw: Any) -> tuple[Any, ...]:
    b = ledger.balance("shop", member, "points", as_of=as_of, **kw)
    return (b.available, b.pending, b.expiring_soon, b.next_expiry)


def spend_refused(ledger: CheckedLedger, points: int, when: str, **kw: Any) -> Rejected:
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as caught:
        ledger.spend("shop", "alice", "points", points, key=f"s-{when}", at=when,
                     policy=MONTHLY, **kw)  # fmt: skip
    assert snapshot(ledger.db) == before
    return caught.value


def lots(ledger: CheckedLedger) -> list[tuple[str, int, int, str]]:
    with ledger.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT m.ref, l.points, l.remaining, l.state FROM lots l "
                "JOIN members m ON m.id = l.member_id ORDER BY l.id"
            )
        ).all()
    return [(str(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]


def kinds(ledger: CheckedLedger, member: str = "alice") -> list[str]:
    return [entry.kind for entry in reversed(ledger.history("shop", member))]


def test_spend_of_lapsed_points_before_the_job_is_refused(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    refused = spend_refused(ledger, 10, LAPSED_AT)  # the deadline itself is too late
    assert refused.code is RejectionCode.INSUFFICIENT_POINTS
    assert refused.field == "points"
    assert refused.detail == {"available": 0, "requested": 10, "lapsed": 100,
                              "lapsed_at": LAPSED_AT}  # fmt: skip
    assert refused.message == (
        "member 'alice' has 0 points available, 10 requested; 100 lapsed at "
        "2026-02-01T00:00:00+00:00 after no activity since 2026-01-01T00:00:00+00:00"
    )
    assert balance(ledger, LAPSED_AT, policy=MONTHLY) == (0, 0, 0, None)
    assert balance(ledger, LAPSED_AT) == (100, 0, 0, None)  # without the policy: not known
    # the refused spend was no activity: the job expires the points once, as it would have
    assert lapse(ledger, LAPSED_AT) == (1, 1, {"points": 100})
    assert lapse(ledger, LAPSED_AT) == (0, 0, {})
    assert lapse(ledger, "2026-03-15") == (0, 0, {})
    assert lots(ledger) == [("alice", 100, 0, "expired")]
    assert kinds(ledger) == ["earn", "expire"]
    assert balance(ledger, "2026-03-15", policy=MONTHLY) == (0, 0, 0, None)


def test_spend_an_instant_before_the_deadline_is_allowed_and_resets_the_clock(
    ledger: CheckedLedger,
) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    first = ledger.spend("shop", "alice", "points", 40, key="s1", at="2026-01-31T23:59:59+00:00",
                         policy=MONTHLY)  # fmt: skip
    assert (first.points, first.available_after) == (40, 60)
    # that spend was activity: the 60 left now lapse at 2026-02-28T23:59:59
    second = ledger.spend("shop", "alice", "points", 10, key="s2", at="2026-02-28T23:59:58+00:00",
                          policy=MONTHLY)  # fmt: skip
    assert (second.points, second.available_after) == (10, 50)
    deadline = at("2026-03-28T23:59:58+00:00")  # a month after the last spend
    assert balance(ledger, "2026-03-28T23:59:57+00:00", policy=MONTHLY) == (50, 0, 50, deadline)
    assert lapse(ledger, "2026-03-28T23:59:57+00:00") == (0, 0, {})
    assert balance(ledger, "2026-03-28T23:59:58+00:00", policy=MONTHLY) == (0, 0, 0, None)
    refused = spend_refused(ledger, 50, "2026-03-28T23:59:58+00:00")
    assert refused.detail == {"available": 0, "requested": 50, "lapsed": 50,
                              "lapsed_at": "2026-03-28T23:59:58+00:00"}  # fmt: skip
    assert lapse(ledger, "2026-03-28T23:59:58+00:00") == (1, 1, {"points": 50})
    assert lots(ledger) == [("alice", 100, 0, "expired")]
    assert kinds(ledger) == ["earn", "spend", "spend", "expire"]


def test_an_activity_in_another_currency_keeps_the_points_spendable(
    ledger: CheckedLedger,
) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.earn("shop", "alice", "miles", 5, key="m1", at=T0 + 19 * DAY)  # 20 January
    receipt = ledger.spend("shop", "alice", "points", 100, key="s1", at="2026-02-10",
                           policy=MONTHLY)  # fmt: skip
    assert (receipt.points, receipt.available_after) == (100, 0)
    assert lapse(ledger, "2026-02-10") == (0, 0, {})  # nothing lapsed: 20 Jan + 1 month
    assert lots(ledger) == [("alice", 100, 0, "spent"), ("alice", 5, 5, "available")]


def test_spend_after_the_deadline_draws_only_points_earned_since(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.earn("shop", "alice", "points", 30, key="e2", at="2026-02-10")  # came back too late
    refused = spend_refused(ledger, 50, "2026-02-12")
    assert refused.detail == {"available": 30, "requested": 50, "lapsed": 100,
                              "lapsed_at": LAPSED_AT}  # fmt: skip
    spent = ledger.spend("shop", "alice", "points", 30, key="s1", at="2026-02-12",
                         policy=MONTHLY)  # fmt: skip
    assert [(m.lot_id, m.points) for m in spent.lot_moves] == [(2, -30)]
    assert lots(ledger) == [("alice", 100, 100, "available"), ("alice", 30, 0, "spent")]
    # the spend on 12 February was activity, but too late to bring back the 100
    assert balance(ledger, "2026-02-12", policy=MONTHLY) == (0, 0, 0, None)
    assert lapse(ledger, "2026-02-12") == (1, 1, {"points": 100})
    assert lapse(ledger, "2026-02-12") == (0, 0, {})
    assert lapse(ledger, "2026-04-01") == (0, 0, {})  # the 12 March lapse: nothing left
    assert lots(ledger) == [("alice", 100, 0, "expired"), ("alice", 30, 0, "spent")]
    entry = ledger.history("shop", "alice")[0]
    assert (entry.kind, entry.available_change, entry.detail) == (
        "expire", -100,
        {"as_of": "2026-02-12T00:00:00+00:00", "last_activity": "2026-01-01T00:00:00+00:00",
         "lapsed_at": LAPSED_AT},
    )  # fmt: skip


def test_balance_after_the_deadline_leaves_lapsed_points_out(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.earn("shop", "alice", "points", 20, key="e2", at=T0, expires_at="2026-03-01")
    ledger.earn("shop", "alice", "points", 7, key="e3", at=T0, pending_until="2026-03-10")
    ledger.earn("shop", "bob", "points", 50, key="b1", at=T0 + 10 * DAY)
    march = at("2026-03-01T00:00:00+00:00")
    before = "2026-01-31T23:59:59+00:00"
    # the dated 20 lapse with the 100 before their own date: expiring once, at the deadline
    assert balance(ledger, before, policy=MONTHLY) == (120, 7, 120, at(LAPSED_AT))
    assert balance(ledger, before) == (120, 7, 20, march)
    assert balance(ledger, LAPSED_AT, policy=MONTHLY) == (0, 7, 0, None)
    assert balance(ledger, LAPSED_AT) == (120, 7, 20, march)  # the ledger alone cannot tell
    bob_lapses = at("2026-02-11T00:00:00+00:00")
    assert balance(ledger, LAPSED_AT, "bob", policy=MONTHLY) == (50, 0, 50, bob_lapses)
    assert balance(ledger, "2026-02-11", "bob", policy=MONTHLY) == (0, 0, 0, None)
    ledger.earn("shop", "alice", "points", 30, key="e4", at="2026-02-05")
    new_deadline = at("2026-03-05T00:00:00+00:00")  # a month after the earn of 5 February
    assert balance(ledger, "2026-02-05", policy=MONTHLY) == (30, 7, 30, new_deadline)
    # the job agrees with the balance, and afterwards with or without the policy
    assert lapse(ledger, "2026-02-11") == (2, 3, {"points": 170})
    assert balance(ledger, "2026-02-11") == (30, 7, 0, None)  # the ledger alone: no deadline
    assert balance(ledger, "2026-02-11", policy=MONTHLY) == (30, 7, 30, new_deadline)


def test_debit_adjustment_of_lapsed_points_is_refused(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as caught:
        ledger.adjust("shop", "alice", "points", -10, key="a1", reason="correction",
                      actor="ops", at="2026-02-02", policy=MONTHLY)  # fmt: skip
    assert caught.value.detail == {"available": 0, "requested": 10, "lapsed": 100,
                                   "lapsed_at": LAPSED_AT}  # fmt: skip
    assert snapshot(ledger.db) == before


def test_spend_with_a_policy_that_does_not_lapse_spends_as_before(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    dated = ExpiryPolicy(mode="after_earning", months=1)
    receipt = ledger.spend("shop", "alice", "points", 100, key="s1", at="2027-01-01",
                           policy=dated)  # fmt: skip
    assert (receipt.points, receipt.available_after) == (100, 0)


# ------------------------------------------------------------------ concurrency

MEMBERS, JOBS, SPENDS = 8, 4, 3


def test_concurrent_jobs_and_spends_of_lapsed_points_expire_each_once(
    ledger: CheckedLedger,
) -> None:
    """Four jobs race three spends per member, on points that lapsed on 1 February:
    every spend is refused (under the member's lock it sees the lapse whether or not a
    job has moved the points yet) and every point is expired once."""
    inner = ledger.inner
    refs = [f"m{i}" for i in range(MEMBERS)]
    for ref in refs:
        ledger.create_member("shop", ref)
        ledger.earn("shop", ref, "points", 100, key=f"e-{ref}", at=T0)
    start = threading.Barrier(JOBS + MEMBERS)

    def job(index: int) -> JobReport:
        start.wait()
        return inner.expire("shop", ["2026-02-01", "2026-02-02"][index % 2], policy=MONTHLY)

    def spender(ref: str) -> list[dict[str, Any]]:
        start.wait()
        refusals = []
        for i in range(SPENDS):
            with pytest.raises(Rejected) as caught:
                inner.spend("shop", ref, "points", 30, key=f"s-{ref}-{i}",
                            at="2026-02-01T12:00:00+00:00", policy=MONTHLY)  # fmt: skip
            assert caught.value.code is RejectionCode.INSUFFICIENT_POINTS
            refusals.append(caught.value.detail)
        return refusals

    with ThreadPoolExecutor(max_workers=JOBS + MEMBERS) as pool:
        jobs = [pool.submit(job, i) for i in range(JOBS)]
        spends = [pool.submit(spender, ref) for ref in refs]
        reports = [f.result() for f in jobs]
        refusals = [d for f in spends for d in f.result()]

    assert sum(r.points.get("points", 0) for r in reports) == 100 * MEMBERS
    assert sum(r.transactions for r in reports) == MEMBERS
    # refused before a job moved the points: they lapsed; after: nothing is held
    assert {d["available"] for d in refusals} == {0}
    assert all(d.get("lapsed", 100) == 100 for d in refusals)
    with ledger.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, COUNT(*), SUM(points) FROM ledger_transactions "
                "WHERE kind IN ('expire', 'spend') GROUP BY kind ORDER BY kind"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("expire", MEMBERS, 100 * MEMBERS)]
    assert [state for *_, state in lots(ledger)] == ["expired"] * MEMBERS
    assert_invariants(ledger.db)
