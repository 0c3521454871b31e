"""An erased member's account keeps the books but takes no new activity, in the ledger
itself: an earn, a spend or an adjustment naming the tombstone is refused with
``member_erased`` (nothing written), and so is taking its lock to write; the daily jobs
still move its lots: the release job releases its ended holds, the expiry job expires
its due points (dated lots, and points lapsed by inactivity). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from fidelite.engine import Event
from fidelite.ledger import Ledger, Rejected, RejectionCode
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from fidelite.webhooks.tables import outbox
from tests.support import T0, snapshot

DAY = timedelta(days=1)


def erased_ann(db: Database, ledger: Ledger) -> str:
    """Ann earns 100 points expiring on day 10 and 50 held until day 5, then is erased."""
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "ann")
    ledger.earn("shop", "ann", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.earn("shop", "ann", "points", 50, key="e2", at=T0, pending_until=T0 + 5 * DAY)
    with db.write() as conn:
        return erase_member(conn, "shop", "ann", at=T0 + DAY).tombstone


def test_writes_naming_the_tombstone_are_refused(db: Database) -> None:
    ledger = Ledger(db)
    tombstone = erased_ann(db, ledger)
    before = snapshot(db)
    message = (f"member {tombstone!r} of program 'shop' was erased: its account takes no "
               "more changes (its balance and history stay readable)")  # fmt: skip
    writes = [
        lambda: ledger.earn("shop", tombstone, "points", 10, key="w1", at=T0 + 2 * DAY),
        lambda: ledger.spend("shop", tombstone, "points", 10, key="w2", at=T0 + 2 * DAY),
        lambda: ledger.adjust("shop", tombstone, "points", -10, key="w3", reason="take",
                              actor="desk", at=T0 + 2 * DAY),
        lambda: ledger.adjust("shop", tombstone, "points", 10, key="w4", reason="gift",
                              actor="desk", at=T0 + 2 * DAY),
    ]  # fmt: skip
    for write in writes:
        with pytest.raises(Rejected) as refused:
            write()
        assert (refused.value.code, refused.value.message) == (RejectionCode.MEMBER_ERASED,
                                                               message)  # fmt: skip
        assert refused.value.field == "member_ref"
    with pytest.raises(Rejected) as refused, db.write() as conn:
        ledger.lock(conn, "shop", tombstone)
    assert refused.value.code is RejectionCode.MEMBER_ERASED
    with db.write() as conn:
        ledger.lock(conn, "shop", tombstone, books=True)  # a job's: the books go on
    assert snapshot(db) == before
    assert ledger.balance("shop", tombstone, "points", as_of=T0 + 2 * DAY).available == 100


def test_the_jobs_still_move_an_erased_members_lots(db: Database) -> None:
    ledger = Ledger(db)
    tombstone = erased_ann(db, ledger)
    released = ledger.release_due("shop", T0 + 6 * DAY)
    assert (released.transactions, released.points) == (1, {"points": 50})
    expired = ledger.expire("shop", T0 + 11 * DAY)
    assert (expired.transactions, expired.lots, expired.points) == (1, 1, {"points": 100})
    balance = ledger.balance("shop", tombstone, "points", as_of=T0 + 11 * DAY)
    assert (balance.available, balance.pending) == (50, 0)
    lapsed = ledger.expire("shop", T0 + 200 * DAY, policy=ExpiryPolicy(mode="inactivity",
                                                                       months=1))  # fmt: skip
    assert (lapsed.transactions, lapsed.points) == (1, {"points": 50})
    assert ledger.balance("shop", tombstone, "points", as_of=T0 + 200 * DAY).available == 0
    kinds = [entry.kind for entry in ledger.history("shop", tombstone)]
    assert kinds == ["expire", "expire", "release", "earn", "earn"]


TIERED = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  grace_months: 1
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
"""


def test_the_tier_job_reviews_an_erased_member_and_announces_nothing(db: Database) -> None:
    """The tier job keeps the erased account's timeline as any other's, but writes no
    webhook event about it (one would name the tombstone after the erasure stopped them),
    and a tier assignment naming the tombstone is refused."""
    p = EventProcessor(db, parse_program(TIERED))
    at = datetime.fromisoformat("2026-01-10T10:00:00+01:00")
    p.process(Event(id="p1", type="purchase", member="ann", at=at, amount=Decimal("120")))
    with db.write() as conn:
        tombstone = erase_member(conn, "shop", "ann", at=at + DAY).tombstone
    with pytest.raises(Rejected) as refused:
        p.assign_tier(tombstone, "silver", at=at + 2 * DAY, until=at + 9 * DAY, reason="vip")
    assert refused.value.code is RejectionCode.MEMBER_ERASED
    with db.read() as conn:
        announced = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    changes = p.review_tiers(datetime.fromisoformat("2027-03-10T10:00:00+01:00"))
    assert [(ref, c.kind.value, c.to_tier) for ref, c in changes] == [
        (tombstone, "grace_started", "silver"),
        (tombstone, "downgrade", "bronze"),
    ]
    assert p.member_tier(tombstone) == "bronze"
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == announced
