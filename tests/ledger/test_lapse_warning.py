"""Under an inactivity expiry policy the balance warns of the points about to lapse:
``expiring_soon`` counts the points the lapse to come will take if its deadline falls
in the window (as for lots with a date), ``next_expiry`` is that deadline, and a new
activity moves it. On a SQLite file and on PostgreSQL, exact values.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.ledger.inactivity import Inactivity, lapsing_within
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from tests.support import CheckedLedger

MONTHLY = ExpiryPolicy(mode="inactivity", months=1)  # type: ignore[arg-type]
LAST_PURCHASE = "2026-10-25T10:00:00+00:00"
DEADLINE = datetime.fromisoformat("2026-11-25T10:00:00+00:00")  # a month after it


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def balance(
    ledger: CheckedLedger, as_of: str, member: str = "bob", **kw: Any
) -> tuple[int, int, int, datetime | None]:
    b = ledger.balance("shop", member, "points", as_of=as_of, **kw)
    return (b.available, b.pending, b.expiring_soon, b.next_expiry)


def warned(ledger: CheckedLedger, as_of: str, days: int = 30) -> list[tuple[str, int, datetime]]:
    """What ``fidelite webhooks expiring`` announces for the window after ``as_of``."""
    rule = Inactivity(MONTHLY, ZoneInfo("UTC"))
    start = at(as_of)
    with ledger.db.read() as conn:
        found = lapsing_within(conn, "shop", rule, start, start + timedelta(days=days))
    return [(s.member_ref, s.points, s.deadline) for s in found]


def lot_states(ledger: CheckedLedger) -> list[tuple[int, str]]:
    with ledger.db.read() as conn:
        rows = conn.execute(text("SELECT remaining, state FROM lots ORDER BY id")).all()
    return [(int(r[0]), str(r[1])) for r in rows]


def test_points_lapsing_by_inactivity_expire_soon_at_the_deadline(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "bob", "points", 50, key="e1", at=LAST_PURCHASE)
    # before the window (30 days by default): not expiring soon, but the next expiry
    assert balance(ledger, "2026-10-25T12:00:00+00:00", policy=MONTHLY) == (50, 0, 0, DEADLINE)
    assert balance(ledger, "2026-10-26T09:59:59+00:00", policy=MONTHLY) == (50, 0, 0, DEADLINE)
    # the window's end reaches the deadline: inside, as for a lot expiring at that instant
    assert balance(ledger, "2026-10-26T10:00:00+00:00", policy=MONTHLY) == (50, 0, 50, DEADLINE)
    assert balance(ledger, "2026-11-10", policy=MONTHLY) == (50, 0, 50, DEADLINE)
    assert warned(ledger, "2026-11-10T00:00:00+00:00") == [("bob", 50, DEADLINE)]  # as announced
    assert balance(ledger, "2026-11-10", policy=MONTHLY, soon_days=10) == (50, 0, 0, DEADLINE)
    assert balance(ledger, "2026-11-10", policy=MONTHLY, soon_days=15) == (50, 0, 0, DEADLINE)
    assert balance(ledger, "2026-11-10", policy=MONTHLY, soon_days=16) == (50, 0, 50, DEADLINE)
    assert balance(ledger, "2026-11-25T09:59:59+00:00", policy=MONTHLY) == (50, 0, 50, DEADLINE)
    assert balance(ledger, "2026-11-10") == (50, 0, 0, None)  # the ledger alone cannot tell
    # at and after the deadline, before the job runs: lapsed, not available, no warning
    assert balance(ledger, "2026-11-25T10:00:00+00:00", policy=MONTHLY) == (0, 0, 0, None)
    assert balance(ledger, "2026-11-26", policy=MONTHLY) == (0, 0, 0, None)
    assert lot_states(ledger) == [(50, "available")]
    assert ledger.expire("shop", "2026-11-26", policy=MONTHLY).points == {"points": 50}
    assert balance(ledger, "2026-11-26", policy=MONTHLY) == (0, 0, 0, None)
    assert lot_states(ledger) == [(0, "expired")]


def test_new_activity_moves_the_deadline(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "bob", "points", 50, key="e1", at=LAST_PURCHASE)
    ledger.spend("shop", "bob", "points", 10, key="s1", at="2026-11-20T09:00:00+00:00",
                 policy=MONTHLY)  # fmt: skip
    moved = at("2026-12-20T09:00:00+00:00")  # a month after the spend
    assert balance(ledger, "2026-11-21", policy=MONTHLY) == (40, 0, 40, moved)
    assert balance(ledger, "2026-11-21", policy=MONTHLY, soon_days=10) == (40, 0, 0, moved)
    assert balance(ledger, "2026-11-25T10:00:00+00:00", policy=MONTHLY) == (40, 0, 40, moved)
    # activity in another currency and a goodwill credit move it for every point too
    ledger.earn("shop", "bob", "miles", 3, key="m1", at="2026-12-01T00:00:00+00:00")
    assert balance(ledger, "2026-12-02", policy=MONTHLY) == (
        40, 0, 40, at("2027-01-01T00:00:00+00:00"),
    )  # fmt: skip
    ledger.adjust("shop", "bob", "points", 5, key="a1", reason="goodwill", actor="ops",
                  at="2026-12-10T00:00:00+00:00")  # fmt: skip
    january10 = at("2027-01-10T00:00:00+00:00")  # 31 days later: just past a 30-day window
    assert balance(ledger, "2026-12-10", policy=MONTHLY) == (45, 0, 0, january10)
    assert balance(ledger, "2026-12-10", policy=MONTHLY, soon_days=31) == (45, 0, 45, january10)
    # a reversal is no activity: it leaves the deadline where the credit put it
    credit = ledger.history("shop", "bob", currency="points")[0]
    ledger.reverse("shop", credit.transaction_id, key="r1", at="2026-12-15T00:00:00+00:00")
    assert balance(ledger, "2026-12-16", policy=MONTHLY) == (40, 0, 40, january10)


def test_dated_lots_and_the_lapse_count_each_point_once(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "bob", "points", 20, key="a", at="2026-10-20", expires_at="2026-11-15")
    ledger.earn("shop", "bob", "points", 15, key="b", at="2026-10-20", expires_at="2026-12-01")
    ledger.earn("shop", "bob", "points", 30, key="c", at="2026-10-20", expires_at="2027-03-01")
    ledger.earn("shop", "bob", "points", 50, key="d", at=LAST_PURCHASE)
    nov15 = at("2026-11-15T00:00:00+00:00")
    # the 20 by their date, the 15, 30 and 50 at the deadline (before the 15's and 30's dates)
    assert balance(ledger, "2026-11-10", policy=MONTHLY) == (115, 0, 115, nov15)
    assert balance(ledger, "2026-11-10", policy=MONTHLY, soon_days=3) == (115, 0, 0, nov15)
    assert balance(ledger, "2026-11-10", policy=MONTHLY, soon_days=7) == (115, 0, 20, nov15)
    assert balance(ledger, "2026-11-10") == (115, 0, 35, nov15)  # dates alone: the 20 and 15
    # the 20 are past their date: the deadline comes next, for every point left
    assert balance(ledger, "2026-11-16", policy=MONTHLY) == (95, 0, 95, DEADLINE)
    assert balance(ledger, "2026-11-16", policy=MONTHLY, soon_days=5) == (95, 0, 0, DEADLINE)
    assert balance(ledger, "2026-11-25T10:00:00+00:00", policy=MONTHLY) == (0, 0, 0, None)
    # the job takes both causes at once: what the balance said was going
    report = ledger.expire("shop", "2026-11-25T10:00:00+00:00", policy=MONTHLY)
    assert (report.lots, report.points) == (4, {"points": 115})


def test_points_earned_after_the_last_lapse_are_warned_of_alone(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "bob", "points", 100, key="e1", at="2026-09-01T00:00:00+00:00")
    ledger.earn("shop", "bob", "points", 50, key="e2", at=LAST_PURCHASE)  # 100 lapsed 1 Oct
    assert balance(ledger, "2026-11-10", policy=MONTHLY) == (50, 0, 50, DEADLINE)
    assert balance(ledger, "2026-09-20", policy=MONTHLY) == (
        150, 0, 100, at("2026-10-01T00:00:00+00:00"),
    )  # fmt: skip  # the September view counts the October earn, as the ledger alone does


def test_points_whose_hold_ended_are_warned_of_before_their_release(
    ledger: CheckedLedger,
) -> None:
    ledger.earn("shop", "bob", "points", 40, key="h1", at=LAST_PURCHASE,
                pending_until="2026-11-01T10:00:00+00:00")  # fmt: skip
    # still held: pending, not available, so not expiring soon
    assert balance(ledger, "2026-10-30", policy=MONTHLY) == (0, 40, 0, None)
    # the hold has ended, the release job has not run: available, lapsing at the deadline
    assert balance(ledger, "2026-11-10", policy=MONTHLY) == (40, 0, 40, DEADLINE)
    assert lot_states(ledger) == [(40, "pending")]
    assert ledger.release_due("shop", "2026-11-10").points == {"points": 40}
    assert balance(ledger, "2026-11-10", policy=MONTHLY) == (40, 0, 40, DEADLINE)


def test_the_deadline_is_a_month_in_the_programs_time_zone(ledger: CheckedLedger) -> None:
    # 30 Jan 23:30 UTC is 31 Jan in Paris: + 1 month = 28 Feb 00:30 Paris = 27 Feb 23:30 UTC
    ledger.earn("shop", "bob", "points", 10, key="e1", at="2026-01-30T23:30:00+00:00")
    paris = ZoneInfo("Europe/Paris")
    assert balance(ledger, "2026-02-10", policy=MONTHLY, zone=paris) == (
        10, 0, 10, at("2026-02-27T23:30:00+00:00"),
    )  # fmt: skip
    assert balance(ledger, "2026-02-10", policy=MONTHLY) == (
        10, 0, 10, at("2026-02-28T23:30:00+00:00"),
    )  # fmt: skip


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


def event(event_id: str, kind: str, when: str, amount: str | None = None, **extra: Any) -> Event:
    return Event(id=event_id, type=kind, member="bob", at=at(when),
                 amount=None if amount is None else Decimal(amount), **extra)  # fmt: skip


def test_an_event_that_earns_nothing_moves_the_deadline_a_refund_does_not(db: Database) -> None:
    program = parse_program(PROGRAM)
    processor = EventProcessor(db, program)
    processor.process(event("p1", "purchase", LAST_PURCHASE, "50"))
    processor.process(event("p2", "purchase", "2026-10-26T10:00:00+00:00", "10"))
    processor.process(event("v1", "review", "2026-11-05T10:00:00+00:00"))  # earns nothing
    processor.process(event("r1", "refund", "2026-11-15T10:00:00+00:00", "10", refund_of="p2"))
    ledger = processor.ledger
    policy = {"policy": program.expiry, "zone": program.zone}
    moved = at("2026-12-05T10:00:00+00:00")  # a month after the review, not the refund
    b = ledger.balance("shop", "bob", "points", as_of="2026-11-20", **policy)
    assert (b.available, b.pending, b.expiring_soon, b.next_expiry) == (50, 0, 50, moved)
    b = ledger.balance("shop", "bob", "points", as_of="2026-11-20", soon_days=10, **policy)
    assert (b.available, b.expiring_soon, b.next_expiry) == (50, 0, moved)
    # the job lapses them at that deadline, not before
    assert ledger.expire("shop", "2026-12-05T09:59:59+00:00", **policy).points == {}
    assert ledger.expire("shop", moved, **policy).points == {"points": 50}
    b = ledger.balance("shop", "bob", "points", as_of=moved, **policy)
    assert (b.available, b.expiring_soon, b.next_expiry) == (0, 0, None)
    assert_invariants(db)
