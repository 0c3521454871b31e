"""``points.expiring`` under an inactivity policy: points whose hold ends after a first
warning are announced once by a later run, and points an earlier lapse took are not
announced. On a SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import text

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.expiring import announce_expiring_points
from fidelite.webhooks.tables import outbox
from tests.webhooks.support import PROGRAM, count, outbox_rows

HELD = parse_program(
    PROGRAM
    + "expiry: {mode: inactivity, months: 1, warn_days: 30}\n"
    + "pending: {days: 14, event_types: [purchase]}\nevents: [review, visit]\n"
)
UTC_ZONE = ZoneInfo("UTC")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def event(event_id: str, kind: str, member: str, when: str, amount: str | None = None) -> Event:
    return Event(id=event_id, type=kind, member=member, at=at(when),
                 amount=None if amount is None else Decimal(amount))  # fmt: skip


def announced(db: Database, as_of: str) -> list[tuple[str, int, str, str]]:
    found = announce_expiring_points(db, "shop", at(as_of), policy=HELD.expiry, zone=UTC_ZONE)
    return [(e["member"], e["points"], e["expires_at"], e["cause"]) for e in found]


def keys(db: Database) -> list[str]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT dedup_key FROM outbox ORDER BY id")).scalars()
        return [str(k) for k in rows if k and str(k).startswith("points.expiring")]


def bonus(p: EventProcessor, member: str, points: int, key: str, when: str) -> None:
    """A hand credit of ``points`` (an activity) at ``when``, enrolling the member."""
    if key == "b1":
        p.ledger.create_member("shop", member)
    p.ledger.adjust(
        "shop", member, "points", points, reason="welcome", key=key, actor="test", at=at(when)
    )


def test_points_released_after_the_first_warning_are_announced_once(wdb: Database) -> None:
    """kim: 10 points credited on 1 January, a purchase on 10 January 10:00 (her last
    activity) earning 100 held until 24 January; all lapse on 10 February 10:00. The
    warning of 15 January announces the 10 she holds, the run of 25 January the 100
    released since, and no run announces anything again."""
    p = EventProcessor(wdb, HELD)
    bonus(p, "kim", 10, "b1", "2025-01-01T10:00:00")
    p.process(event("k2", "purchase", "kim", "2025-01-10T10:00:00", "100.00"))
    before = count(wdb, outbox)
    deadline = "2025-02-10T10:00:00+00:00"
    assert announced(wdb, "2025-01-15T00:00:00") == [("kim", 10, deadline, "inactivity")]
    assert announced(wdb, "2025-01-16T00:00:00") == []
    assert announced(wdb, "2025-01-25T00:00:00") == [("kim", 100, deadline, "inactivity")]
    assert announced(wdb, "2025-01-26T00:00:00") == []
    p.ledger.release_due("shop", at("2025-01-26T00:00:00"))
    assert announced(wdb, "2025-01-27T00:00:00") == []  # released: the same 100, not again
    base = "points.expiring:inactivity:1:points:" + deadline
    assert keys(wdb) == [base, base + ":2"]
    assert [r["payload"] for r in outbox_rows(wdb)[before:]] == [
        {"member": "kim", "currency": "points", "points": points, "expires_at": deadline,
         "lot_id": None, "cause": "inactivity", "last_activity": "2025-01-10T10:00:00+00:00"}
        for points in (10, 100)
    ]  # fmt: skip
    b = p.ledger.balance("shop", "kim", "points", as_of=at("2025-01-27T00:00:00"),
                         policy=HELD.expiry, zone=UTC_ZONE)  # fmt: skip
    assert (b.available, b.expiring_soon) == (110, 110)  # what the two warnings add up to


def test_a_first_warning_after_the_hold_ended_announces_all_at_once(wdb: Database) -> None:
    p = EventProcessor(wdb, HELD)
    bonus(p, "kim", 10, "b1", "2025-01-01T10:00:00")
    p.process(event("k2", "purchase", "kim", "2025-01-10T10:00:00", "100.00"))
    deadline = "2025-02-10T10:00:00+00:00"
    assert announced(wdb, "2025-01-25T00:00:00") == [("kim", 110, deadline, "inactivity")]
    assert announced(wdb, "2025-02-01T00:00:00") == []
    assert keys(wdb) == ["points.expiring:inactivity:1:points:" + deadline]


def test_points_an_earlier_lapse_took_are_not_announced(wdb: Database) -> None:
    """lou: 10 points on 1 January 10:00 lapse on 1 February 10:00; a visit at 11:00
    comes too late for them. On 2 February she holds nothing (the job has not run): the
    warning announces nothing, until she earns again."""
    p = EventProcessor(wdb, HELD)
    bonus(p, "lou", 10, "b1", "2025-01-01T10:00:00")
    p.process(event("l2", "visit", "lou", "2025-02-01T11:00:00"))
    b = p.ledger.balance("shop", "lou", "points", as_of=at("2025-02-02T00:00:00"),
                         policy=HELD.expiry, zone=UTC_ZONE)  # fmt: skip
    assert (b.available, b.expiring_soon) == (0, 0)
    before = count(wdb, outbox)
    assert announced(wdb, "2025-02-02T00:00:00") == []
    assert count(wdb, outbox) == before
    bonus(p, "lou", 5, "b2", "2025-02-03T09:00:00")
    assert announced(wdb, "2025-02-04T00:00:00") == [
        ("lou", 5, "2025-03-03T09:00:00+00:00", "inactivity")
    ]
