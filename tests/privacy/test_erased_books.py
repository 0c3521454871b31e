"""An erased member's account keeps the books but takes no new activity, in the ledger
itself: an earn, a spend or an adjustment naming the tombstone is refused with
``member_erased`` (nothing written), and so is taking its lock to write; the daily jobs
still move its lots: the release job releases its ended holds, the expiry job expires
its due points (dated lots, and points lapsed by inactivity). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from fidelite.ledger import Ledger, Rejected, RejectionCode
from fidelite.privacy import erase_member
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
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
