"""``points.expiring`` under the program's policy: warn_days and inactivity deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from fidelite.webhooks.expiring import announce_expiring, warning_days
from fidelite.webhooks.tables import outbox
from tests.webhooks.support import PROGRAM, count, outbox_rows, purchase

INACTIVE = parse_program(
    PROGRAM + "expiry: {mode: inactivity, months: 1, warn_days: 10}\nevents: [review]\n"
)
POLICY = INACTIVE.expiry
UTC_ZONE = ZoneInfo("UTC")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def expiring_payloads(db: Database, since: int) -> list[dict[str, object]]:
    return [r["payload"] for r in outbox_rows(db)[since:] if r["event_type"] == "points.expiring"]


def announce(db: Database, as_of: str, **kwargs: object) -> int:
    return announce_expiring(db, "shop", utc(as_of), policy=POLICY, zone=UTC_ZONE, **kwargs)  # type: ignore[arg-type]


def test_inactivity_deadlines_are_announced_once_within_warn_days(wdb: Database) -> None:
    p = EventProcessor(wdb, INACTIVE)
    p.process(purchase("p1", "ann", "120.00", at="2026-11-02T10:00:00+00:00"))
    p.process(purchase("p2", "bob", "30.00", at="2026-11-10T10:00:00+00:00"))
    before = count(wdb, outbox)
    # ann's points lapse on 2 December 10:00, bob's on 10 December 10:00
    assert announce(wdb, "2026-11-22T09:59:59") == 0  # 2 Dec 10:00 is 1 s beyond 10 days
    assert count(wdb, outbox) == before
    assert announce(wdb, "2026-11-22T10:00:00") == 1
    assert announce(wdb, "2026-11-23T00:00:00") == 0  # a re-run: nothing twice
    assert expiring_payloads(wdb, before) == [
        {"member": "ann", "currency": "points", "points": 120,
         "expires_at": "2026-12-02T10:00:00+00:00", "lot_id": None, "cause": "inactivity",
         "last_activity": "2026-11-02T10:00:00+00:00"},
    ]  # fmt: skip
    # ann comes back: a new deadline (26 December), so a new warning, with all her points
    p.process(purchase("p3", "ann", "5.00", at="2026-11-26T10:00:00+00:00"))
    assert announce(wdb, "2026-12-01T00:00:00") == 1  # bob's
    assert announce(wdb, "2026-12-16T10:00:00") == 1  # ann's
    assert [
        (e["member"], e["points"], e["expires_at"]) for e in expiring_payloads(wdb, before)
    ] == [
        ("ann", 120, "2026-12-02T10:00:00+00:00"),
        ("bob", 30, "2026-12-10T10:00:00+00:00"),
        ("ann", 125, "2026-12-26T10:00:00+00:00"),
    ]


def test_a_deadline_already_past_is_not_announced(wdb: Database) -> None:
    p = EventProcessor(wdb, INACTIVE)
    p.process(purchase("p1", "ann", "120.00", at="2026-11-02T10:00:00+00:00"))
    assert announce(wdb, "2026-12-02T10:00:00") == 0  # lapsed: the expiry job's turn
    assert announce(wdb, "2026-12-02T10:00:00", days=365) == 0


def test_dated_lots_are_left_out_of_the_inactivity_sum(wdb: Database) -> None:
    p = EventProcessor(wdb, INACTIVE)
    p.process(purchase("p1", "ann", "120.00", at="2026-11-02T10:00:00+00:00"))
    p.ledger.earn("shop", "ann", "points", 7, key="bonus", at=utc("2026-11-02T10:00:00"),
                  expires_at=utc("2026-11-30T00:00:00"))  # fmt: skip
    before = count(wdb, outbox)
    assert announce(wdb, "2026-11-25T00:00:00") == 2
    assert [
        (e["cause"], e["points"], e["expires_at"], e["lot_id"] is None)
        for e in expiring_payloads(wdb, before)
    ] == [
        ("date", 7, "2026-11-30T00:00:00+00:00", False),
        ("inactivity", 120, "2026-12-02T10:00:00+00:00", True),
    ]


def test_the_window_follows_warn_days_unless_days_is_given(wdb: Database) -> None:
    p = EventProcessor(wdb, parse_program(PROGRAM))
    p.process(purchase("p0", "ann", "1.00"))
    as_of = utc("2026-11-20T00:00:00")
    p.ledger.earn("shop", "ann", "points", 9, key="d20", at=as_of,
                  expires_at=as_of + timedelta(days=20))  # fmt: skip
    warn10 = ExpiryPolicy(mode="after_earning", months=12, warn_days=10)  # type: ignore[arg-type]
    off = ExpiryPolicy(mode="after_earning", months=12, warn_days=0)  # type: ignore[arg-type]
    before = count(wdb, outbox)
    assert announce_expiring(wdb, "shop", as_of, policy=warn10) == 0
    assert announce_expiring(wdb, "shop", as_of, policy=off, days=20) == 1  # --days overrides
    assert count(wdb, outbox) == before + 1
    assert announce_expiring(wdb, "shop", as_of) == 0  # default 30 days: already announced
    assert (warning_days(None, None), warning_days(None, warn10), warning_days(None, off)) == (
        30, 10, 0,
    )  # fmt: skip
    assert announce_expiring(wdb, "shop", as_of, policy=off) == 0


def test_a_window_outside_0_to_365_days_is_refused(wdb: Database) -> None:
    with pytest.raises(ValueError, match="days: must be a whole number from 0 to 365"):
        announce_expiring(wdb, "shop", utc("2026-11-20T00:00:00"), days=-1)
    with pytest.raises(ValueError, match="days"):
        warning_days(366, None)


def test_an_event_that_earns_nothing_moves_the_warning(wdb: Database) -> None:
    p = EventProcessor(wdb, INACTIVE)
    p.process(purchase("p1", "ann", "120.00", at="2026-11-02T10:00:00+00:00"))
    review = purchase("v1", "ann", "0", at="2026-11-15T10:00:00+00:00")
    # a type recorded without a rule: 0 points
    p.process(review.model_copy(update={"type": "review", "amount": None}))
    before = count(wdb, outbox)
    assert announce(wdb, "2026-11-22T10:00:00") == 0  # not 2 December any more
    assert announce(wdb, "2026-12-05T10:00:00") == 1
    assert [
        (e["points"], e["expires_at"], e["last_activity"]) for e in expiring_payloads(wdb, before)
    ] == [
        (120, "2026-12-15T10:00:00+00:00", "2026-11-15T10:00:00+00:00"),
    ]


HELD = parse_program(
    PROGRAM + "expiry: {mode: after_earning, months: 1}\n"
    "pending: {days: 14, event_types: [purchase]}\n"
)


def owing_ten(p: EventProcessor, member: str, at: str) -> None:
    """``member`` joins and owes 10 points: a gift of 10, spent, then clawed back."""
    p.ledger.create_member("shop", member)
    gift = p.ledger.earn("shop", member, "points", 10, key=f"gift-{member}", at=at)
    p.ledger.spend("shop", member, "points", 10, key=f"mug-{member}", at=at)
    p.ledger.reverse("shop", gift.transaction_id, key=f"claw-{member}", shortfall="debt", at=at)


def soon(p: EventProcessor, member: str, as_of: str) -> tuple[int, int, int, int]:
    b = p.ledger.balance("shop", member, "points", as_of=utc(as_of), soon_days=30)
    return (b.available, b.pending, b.expiring_soon, b.debt)


def test_points_whose_hold_ended_are_announced_before_their_release(wdb: Database) -> None:
    """ann's purchase earns 40 points held until 16 November 11:00 and expiring on
    2 December 11:00; she owes 10, which the release repays first. Once the hold has
    ended, the warning announces the 30 points her balance counts, before the release
    job has run; after it has, nothing is announced again."""
    p = EventProcessor(wdb, HELD)
    owing_ten(p, "ann", "2026-11-02T10:00:00+00:00")
    p.process(purchase("p1", "ann", "40.00", at="2026-11-02T11:00:00+00:00"))
    before = count(wdb, outbox)
    assert announce_expiring(wdb, "shop", utc("2026-11-16T10:59:59")) == 0  # still held
    assert soon(p, "ann", "2026-11-16T10:59:59") == (0, 40, 0, 10)
    assert announce_expiring(wdb, "shop", utc("2026-11-16T11:00:00")) == 1
    assert soon(p, "ann", "2026-11-16T11:00:00") == (30, 0, 30, 0)
    with wdb.read() as conn:
        lot_id, state = conn.execute(text("SELECT id, state FROM lots WHERE points = 40")).one()
    assert state == "pending"  # the release is not written yet
    expected = {"member": "ann", "currency": "points", "points": 30, "lot_id": lot_id,
                "expires_at": "2026-12-02T11:00:00+00:00", "cause": "date"}  # fmt: skip
    assert expiring_payloads(wdb, before) == [expected]
    report = p.ledger.release_due("shop", utc("2026-11-17T00:00:00"))
    assert (report.transactions, report.points) == (1, {"points": 40})  # 10 repaid the debt
    assert soon(p, "ann", "2026-11-17T00:00:00") == (30, 0, 30, 0)
    assert announce_expiring(wdb, "shop", utc("2026-11-17T00:00:00")) == 0  # not twice
    assert expiring_payloads(wdb, before) == [expected]


def test_a_released_hold_is_announced_with_the_same_points(wdb: Database) -> None:
    """The release job ran first: the lot is available, and announced as before."""
    p = EventProcessor(wdb, HELD)
    owing_ten(p, "ann", "2026-11-02T10:00:00+00:00")
    p.process(purchase("p1", "ann", "40.00", at="2026-11-02T11:00:00+00:00"))
    before = count(wdb, outbox)
    assert p.ledger.release_due("shop", utc("2026-11-16T11:00:00")).transactions == 1
    assert announce_expiring(wdb, "shop", utc("2026-11-16T11:00:00")) == 1
    assert announce_expiring(wdb, "shop", utc("2026-11-17T00:00:00")) == 0
    assert [
        (e["member"], e["points"], e["expires_at"]) for e in expiring_payloads(wdb, before)
    ] == [
        ("ann", 30, "2026-12-02T11:00:00+00:00"),
    ]


def test_inactivity_warnings_count_points_whose_hold_ended(wdb: Database) -> None:
    """ann's last activity, a purchase on 2 November 10:00, earns 120 points held for
    7 days; she owes 10. The lapse on 2 December 10:00 will take the 110 points her
    release leaves: announced 10 days before, release job run or not, once."""
    p = EventProcessor(wdb, parse_program(PROGRAM + "expiry: {mode: inactivity, months: 1, "
                                          "warn_days: 10}\npending: {days: 7, event_types: "
                                          "[purchase]}\n"))  # fmt: skip
    owing_ten(p, "ann", "2026-11-01T10:00:00+00:00")
    p.process(purchase("p1", "ann", "120.00", at="2026-11-02T10:00:00+00:00"))
    before = count(wdb, outbox)
    assert announce(wdb, "2026-11-22T10:00:00") == 1
    b = p.ledger.balance("shop", "ann", "points", as_of=utc("2026-11-22T10:00:00"),
                         soon_days=10, policy=POLICY, zone=UTC_ZONE)  # fmt: skip
    assert (b.available, b.pending, b.expiring_soon, b.debt) == (110, 0, 110, 0)
    assert p.ledger.release_due("shop", utc("2026-11-22T10:00:00")).transactions == 1
    assert announce(wdb, "2026-11-23T00:00:00") == 0
    assert expiring_payloads(wdb, before) == [
        {"member": "ann", "currency": "points", "points": 110,
         "expires_at": "2026-12-02T10:00:00+00:00", "lot_id": None, "cause": "inactivity",
         "last_activity": "2026-11-02T10:00:00+00:00"},
    ]  # fmt: skip


def test_the_window_counts_local_days_of_the_programs_zone(wdb: Database) -> None:
    """30 days from midnight of 2 October in Paris end at midnight of 1 November, in
    winter time: the lot expiring then is announced (24-hour steps ended an hour early)."""
    p = EventProcessor(wdb, parse_program(PROGRAM))
    p.process(purchase("p1", "ann", "1.00", at="2026-09-01T10:00:00+00:00"))
    expiry = datetime.fromisoformat("2026-11-01T00:00:00+01:00")
    p.ledger.earn("shop", "ann", "points", 9, key="bonus", at=utc("2026-09-01T10:00:00"),
                  expires_at=expiry)  # fmt: skip
    before = count(wdb, outbox)
    as_of = datetime.fromisoformat("2026-10-02T00:00:00+02:00")
    paris = ZoneInfo("Europe/Paris")
    assert announce_expiring(wdb, "shop", as_of, days=29, zone=paris) == 0
    assert count(wdb, outbox) == before
    assert announce_expiring(wdb, "shop", as_of, days=30, zone=paris) == 1
    assert [(e["member"], e["points"], e["expires_at"], e["cause"])
            for e in expiring_payloads(wdb, before)] == [
        ("ann", 9, "2026-10-31T23:00:00+00:00", "date"),
    ]  # fmt: skip
