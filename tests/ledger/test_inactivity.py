"""Expiry by inactivity through the expiry job, on SQLite and PostgreSQL, exact values."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from fidelite.engine import Event
from fidelite.ledger import Rejected, RejectionCode, assert_invariants
from fidelite.ledger.inactivity import Inactivity, lapsing_within
from fidelite.ledger.service import JobReport
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from tests.support import T0, CheckedLedger, snapshot

DAY = timedelta(days=1)
MONTHLY = ExpiryPolicy(mode="inactivity", months=1)  # type: ignore[arg-type]


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def lapse(
    ledger: CheckedLedger, as_of: datetime | str, **kwargs: Any
) -> tuple[int, int, dict[str, int]]:
    report: JobReport = ledger.expire("shop", as_of, policy=MONTHLY, **kwargs)
    return (report.transactions, report.lots, report.points)


def available(ledger: CheckedLedger, member: str = "alice", currency: str = "points") -> int:
    return ledger.balance("shop", member, currency, as_of=T0).available


def lots(db: Database) -> list[tuple[str, str, int, int, str]]:
    with db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT m.ref, l.currency, l.points, l.remaining, l.state FROM lots l "
                "JOIN members m ON m.id = l.member_id ORDER BY l.id"
            )
        ).all()
    return [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in rows]


def test_expire_lapses_every_point_a_month_after_the_last_activity(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.earn("shop", "alice", "points", 40, key="e2", at=T0 + 10 * DAY)
    ledger.spend("shop", "alice", "points", 30, key="s1", at=T0 + 15 * DAY)
    ledger.earn("shop", "bob", "points", 30, key="e3", at=T0 + 40 * DAY)
    # alice's last activity: 16 January -> her points lapse on 16 February; bob's on 10 March
    assert lapse(ledger, "2026-02-16T00:00:00+00:00") == (1, 2, {"points": 110})
    assert (available(ledger), available(ledger, "bob")) == (0, 30)
    assert lots(ledger.db) == [
        ("alice", "points", 100, 0, "expired"),
        ("alice", "points", 40, 0, "expired"),
        ("bob", "points", 30, 30, "available"),
    ]
    entry = ledger.history("shop", "alice")[0]
    assert (entry.kind, entry.available_change, entry.reason, entry.detail) == (
        "expire", -110, "points expired after inactivity",
        {"as_of": "2026-02-16T00:00:00+00:00", "last_activity": "2026-01-16T00:00:00+00:00",
         "lapsed_at": "2026-02-16T00:00:00+00:00"},
    )  # fmt: skip


def test_expire_an_instant_before_the_deadline_changes_nothing(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    before = snapshot(ledger.db)
    assert lapse(ledger, "2026-01-31T23:59:59+00:00") == (0, 0, {})
    assert snapshot(ledger.db) == before
    assert lapse(ledger, "2026-02-01T00:00:00+00:00") == (1, 1, {"points": 100})


def test_expire_rerun_expires_nothing_twice(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    assert lapse(ledger, "2026-03-01") == (1, 1, {"points": 100})
    before = snapshot(ledger.db)
    assert lapse(ledger, "2026-03-01") == (0, 0, {})  # same day: the first run's key
    assert lapse(ledger, "2026-04-01") == (0, 0, {})  # later: nothing left to lapse
    assert ledger.expire("shop", "2026-04-01").points == {}  # the dates-only job too
    assert snapshot(ledger.db) == before


def test_earn_spend_and_adjust_in_any_currency_reset_the_clock(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.earn("shop", "alice", "miles", 7, key="m1", at=T0 + 20 * DAY)  # 21 Jan
    assert lapse(ledger, T0 + 40 * DAY) == (0, 0, {})  # 10 Feb: miles earned 21 Jan saved all
    ledger.spend("shop", "alice", "miles", 2, key="m2", at=T0 + 45 * DAY)  # 15 Feb
    ledger.adjust("shop", "bob", "points", 50, key="g1", reason="outage", actor="ops",
                  at=T0 + 45 * DAY)  # fmt: skip
    assert lapse(ledger, "2026-03-14T23:00:00+00:00") == (0, 0, {})
    assert lapse(ledger, "2026-03-15T00:00:00+00:00") == (3, 3, {"points": 150, "miles": 5})
    assert [(ref, cur, rem, state) for ref, cur, _, rem, state in lots(ledger.db)] == [
        ("alice", "points", 0, "expired"),
        ("alice", "miles", 0, "expired"),
        ("bob", "points", 0, "expired"),
    ]


def test_release_reversal_and_expiry_are_not_activity(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, pending_until=T0 + 14 * DAY)
    assert ledger.release_due("shop", T0 + 14 * DAY).points == {"points": 100}
    extra = ledger.earn("shop", "alice", "points", 50, key="e2", at=T0 + 5 * DAY)
    ledger.reverse("shop", extra.transaction_id, key="r1", at=T0 + 20 * DAY)
    ledger.earn("shop", "bob", "points", 10, key="b1", at=T0, expires_at=T0 + 25 * DAY)
    assert ledger.expire("shop", T0 + 25 * DAY).points == {"points": 10}  # bob's dated lot
    # alice's last activity is the earn of 6 January: lapse on 6 February
    assert lapse(ledger, "2026-02-05T23:59:59+00:00") == (0, 0, {})
    assert lapse(ledger, "2026-02-06T00:00:00+00:00") == (1, 1, {"points": 100})
    assert available(ledger) == 0


def test_an_activity_at_the_deadline_is_too_late_for_older_points(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)
    ledger.earn("shop", "alice", "points", 25, key="e2", at="2026-02-01T00:00:00+00:00")
    assert lapse(ledger, "2026-02-10") == (1, 1, {"points": 100})
    assert lots(ledger.db) == [
        ("alice", "points", 100, 0, "expired"),
        ("alice", "points", 25, 25, "available"),
    ]


def test_a_first_run_catches_up_on_a_lapse_before_later_activity(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at="2025-01-10")
    ledger.spend("shop", "alice", "points", 20, key="s1", at="2025-01-20")
    ledger.earn("shop", "alice", "points", 60, key="e2", at="2025-06-01")  # after the lapse
    ledger.earn("shop", "alice", "points", 5, key="e3", at="2025-06-20")
    assert lapse(ledger, "2025-07-01") == (1, 1, {"points": 80})  # lapsed 20 February, 60 + 5 kept
    assert available(ledger) == 65
    assert lapse(ledger, "2025-07-20") == (1, 2, {"points": 65})  # 20 June + 1 month


def test_dated_and_lapsed_lots_leave_in_one_transaction(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.earn("shop", "alice", "points", 40, key="e2", at=T0 + DAY)
    assert ledger.expire("shop", T0 + 11 * DAY, policy=MONTHLY).points == {"points": 100}  # by date
    assert ledger.history("shop", "alice")[0].reason == "points expired"
    assert lapse(ledger, "2026-02-02") == (1, 1, {"points": 40})
    ledger.earn("shop", "bob", "points", 10, key="b1", at=T0, expires_at=T0 + 60 * DAY)
    ledger.earn("shop", "bob", "points", 20, key="b2", at=T0)
    assert lapse(ledger, "2026-03-05") == (1, 2, {"points": 30})


def test_without_the_inactivity_policy_undated_lots_stay(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at="2024-01-01")
    dated = ExpiryPolicy(mode="after_earning", months=1)  # type: ignore[arg-type]
    assert ledger.expire("shop", "2026-01-01").points == {}
    assert ledger.expire("shop", "2026-01-01", policy=dated).points == {}
    assert available(ledger) == 100


def test_months_are_counted_in_the_program_zone(ledger: CheckedLedger) -> None:
    # 30 Jan 23:30 UTC is 31 Jan in Paris: + 1 month = 28 Feb 00:30 Paris = 27 Feb 23:30 UTC
    ledger.earn("shop", "alice", "points", 100, key="e1", at="2026-01-30T23:30:00+00:00")
    assert lapse(ledger, "2026-02-28T00:00:00+00:00") == (0, 0, {})  # UTC: 28 Feb 23:30
    paris = ZoneInfo("Europe/Paris")
    assert lapse(ledger, "2026-02-28T00:00:00+00:00", zone=paris) == (1, 1, {"points": 100})


# ----------------------------------------------------- events processed for members

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
expiry: {mode: inactivity, months: 1, warn_days: 10}
events: [review]
"""


def event(event_id: str, kind: str, member: str, when: str, amount: str | None = None,
          **extra: Any) -> Event:  # fmt: skip
    return Event(id=event_id, type=kind, member=member, at=datetime.fromisoformat(when),
                 amount=None if amount is None else Decimal(amount), **extra)  # fmt: skip


def test_an_event_that_earns_nothing_resets_the_clock_but_a_refund_does_not(db: Database) -> None:
    program = parse_program(PROGRAM)
    processor = EventProcessor(db, program)
    processor.process(event("p1", "purchase", "ann", "2026-01-05T10:00:00+00:00", "120"))
    processor.process(event("p2", "purchase", "ann", "2026-01-06T10:00:00+00:00", "30"))
    processor.process(event("v1", "review", "ann", "2026-01-25T10:00:00+00:00"))  # 0 points
    processor.process(
        event("r1", "refund", "ann", "2026-02-20T10:00:00+00:00", "30", refund_of="p2")
    )
    ledger = processor.ledger
    expire = {"policy": program.expiry, "zone": program.zone}
    assert ledger.expire("shop", "2026-02-25T09:59:00+00:00", **expire).points == {}
    report = ledger.expire("shop", "2026-02-25T10:00:00+00:00", **expire)
    assert (report.transactions, report.lots, report.points) == (1, 1, {"points": 120})
    assert ledger.balance("shop", "ann", "points", as_of="2026-03-01").available == 0
    assert_invariants(db)


# ------------------------------------------------------------------ concurrency

MEMBERS, JOBS, SPENDS = 12, 6, 3


def test_concurrent_jobs_and_spends_expire_each_point_once(ledger: CheckedLedger) -> None:
    """Six jobs (three as-of dates) race three spends of 30 per member on points that
    lapsed on 1 February: each point ends spent or expired, never both, never lost."""
    inner = ledger.inner
    refs = [f"m{i}" for i in range(MEMBERS)]
    for ref in refs:
        ledger.create_member("shop", ref)
        ledger.earn("shop", ref, "points", 100, key=f"e-{ref}", at=T0)
    dates = ["2026-02-01", "2026-02-01", "2026-02-02", "2026-02-02", "2026-02-03", "2026-02-01"]
    start = threading.Barrier(JOBS + MEMBERS)

    def job(index: int) -> JobReport:
        start.wait()
        return inner.expire("shop", dates[index], policy=MONTHLY)

    def spender(ref: str) -> int:
        start.wait()
        spent = 0
        for i in range(SPENDS):
            try:
                inner.spend("shop", ref, "points", 30, key=f"s-{ref}-{i}", at="2026-02-01T12:00Z")
            except Rejected as rejected:
                assert rejected.code is RejectionCode.INSUFFICIENT_POINTS
            else:
                spent += 30
        return spent

    with ThreadPoolExecutor(max_workers=JOBS + MEMBERS) as pool:
        jobs = [pool.submit(job, i) for i in range(JOBS)]
        spends = [pool.submit(spender, ref) for ref in refs]
        reports = [f.result() for f in jobs]
        spent = sum(f.result() for f in spends)

    expired = sum(r.points.get("points", 0) for r in reports)
    assert expired + spent == 100 * MEMBERS
    assert sum(r.transactions for r in reports) == MEMBERS  # one expiry per member
    with ledger.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, COUNT(*), SUM(points) FROM ledger_transactions "
                "WHERE kind IN ('expire', 'spend') GROUP BY kind ORDER BY kind"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("expire", MEMBERS, expired), ("spend", spent // 30, spent)]
    assert [state for *_, state in lots(ledger.db)] == ["expired"] * MEMBERS
    assert all(available(ledger, ref) == 0 for ref in refs)
    assert_invariants(ledger.db)


def test_the_calendars_ends_lapse_nothing_early_and_nothing_past_9999(
    ledger: CheckedLedger,
) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at="0001-01-01T00:00:00+00:00")
    ledger.earn("shop", "bob", "points", 40, key="e2", at="9999-12-01T00:00:00+00:00")
    assert lapse(ledger, "0001-01-01") == (0, 0, {})  # a month before: before the calendar
    rule = Inactivity(MONTHLY, ZoneInfo("UTC"))
    with ledger.db.read() as conn:  # warnings read activity from the calendar's first instant
        soon = lapsing_within(conn, "shop", rule, at("0001-01-20T00:00:00+00:00"),
                              at("0001-02-19T00:00:00+00:00"))  # fmt: skip
    assert [(s.member_ref, s.points, s.deadline) for s in soon] == [
        ("alice", 100, at("0001-02-01T00:00:00+00:00"))
    ]
    # bob's deadline would be in January 10000: his points never lapse
    assert lapse(ledger, "9999-12-31T23:59:59+00:00") == (1, 1, {"points": 100})
    late = ledger.balance("shop", "bob", "points", as_of="9999-12-31", soon_days=30)
    assert (late.available, late.expiring_soon, late.next_expiry) == (40, 0, None)
