"""Writes addressed by transaction id and ``points.expiring`` after an erasure.

A reversal or a release asked for by hand (``fidelite ledger reverse|release``) of an
erased member's transaction is refused with ``member_erased`` and changes nothing:
reversing a spend would give the erased account points back, as cancelling a
redemption (refused) would. The jobs and the refund of a purchase made before the
erasure still keep the account's books. ``fidelite webhooks expiring`` announces
nothing about an erased member (the erasure stopped its webhook events) and still
announces the others' points. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from fidelite.engine import Event
from fidelite.ledger import Ledger
from fidelite.privacy import erase_member
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from fidelite.webhooks.expiring import announce_expiring_points
from fidelite.webhooks.tables import outbox
from tests.cli.support import fidelite
from tests.support import T0, snapshot
from tests.webhooks.support import PROGRAM, outbox_rows, processor

DAY = timedelta(days=1)


def erased_ann(db: Database, ledger: Ledger) -> tuple[str, dict[str, int]]:
    """Ann earns 100 points expiring on day 10, 50 held until day 5 (expiring on day
    20) and 7 that do not expire, spends 40 on day 1, and is erased on day 2; bob earns
    30 expiring on day 10 and 5 that do not. Returns the tombstone and ann's transaction
    ids by name."""
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "ann")
    ledger.create_member("shop", "bob")
    earn = ledger.earn("shop", "ann", "points", 100, key="e1", at=T0, expires_at=T0 + 10 * DAY)
    held = ledger.earn("shop", "ann", "points", 50, key="e2", at=T0, pending_until=T0 + 5 * DAY,
                       expires_at=T0 + 20 * DAY)  # fmt: skip
    ledger.earn("shop", "ann", "points", 7, key="e3", at=T0)
    spend = ledger.spend("shop", "ann", "points", 40, key="s1", at=T0 + DAY)
    ledger.earn("shop", "bob", "points", 30, key="b1", at=T0, expires_at=T0 + 10 * DAY)
    ledger.earn("shop", "bob", "points", 5, key="b2", at=T0)
    with db.write() as conn:
        tombstone = erase_member(conn, "shop", "ann", at=T0 + 2 * DAY).tombstone
    ids = {"earn": earn.transaction_id, "held": held.transaction_id,
           "spend": spend.transaction_id}  # fmt: skip
    return tombstone, ids


def test_reverse_and_release_by_hand_of_an_erased_members_transaction_are_refused(
    db: Database,
) -> None:
    ledger = Ledger(db)
    tombstone, ids = erased_ann(db, ledger)
    before = snapshot(db)
    at = ["--at", "2026-01-07T00:00:00+00:00", "--program", "shop", "--db", db.url, "-f", "json"]
    commands = [
        ["ledger", "reverse", str(ids["spend"]), "--key", "rv1", *at],
        ["ledger", "reverse", str(ids["earn"]), "--key", "rv2", "--points", "10", *at],
        ["ledger", "release", str(ids["held"]), "--key", "rl1", *at],
    ]
    for command in commands:
        refused = fidelite(*command, ok=False)
        assert refused.returncode == 1, command
        assert json.loads(refused.stdout)["error"] == {
            "code": "member_erased", "field": "member_ref",
            "message": f"member {tombstone!r} of program 'shop' was erased: its account takes "
            "no more changes (its balance and history stay readable)",
        }, command  # fmt: skip
    assert snapshot(db) == before
    balance = ledger.balance("shop", tombstone, "points", as_of=T0 + 3 * DAY)
    assert (balance.available, balance.pending) == (67, 50)
    # the jobs keep the erased account's books
    released = ledger.release_due("shop", T0 + 6 * DAY)
    assert (released.transactions, released.points) == (1, {"points": 50})
    expired = ledger.expire("shop", T0 + 11 * DAY)
    assert expired.points == {"points": 60 + 30}
    assert ledger.balance("shop", tombstone, "points", as_of=T0 + 11 * DAY).available == 57


def test_a_refund_after_the_erasure_of_an_earlier_purchase_is_still_taken(db: Database) -> None:
    shop = processor(db)
    buy = Event(id="p1", type="purchase", member="ann", at=T0, amount=Decimal("120.00"))
    shop.process(buy)
    with db.write() as conn:
        tombstone = erase_member(conn, "shop", "ann", at=T0 + DAY).tombstone
    refund = Event(id="r1", type="refund", member="ann", at=T0 + 2 * DAY,
                   amount=Decimal("20.00"), refund_of="p1")  # fmt: skip
    assert shop.process(refund).outcome.value == "processed"
    assert shop.ledger.balance("shop", tombstone, "points", as_of=T0 + 3 * DAY).available == 100


def test_expiring_announces_nothing_about_an_erased_member(db: Database) -> None:
    ledger = Ledger(db)
    erased_ann(db, ledger)
    with db.read() as conn:
        kept = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    # dated lots (ann's available one, ann's ended hold) and bob's
    dated = announce_expiring_points(db, "shop", T0 + 6 * DAY, days=30)
    assert [(p["member"], p["points"], p["cause"]) for p in dated] == [("bob", 30, "date")]
    # by inactivity: the points without a date (ann's 7, bob's 5) lapse a month after
    # the member's last activity
    lapsing = announce_expiring_points(
        db, "shop", T0 + 6 * DAY, days=40, policy=ExpiryPolicy(mode="inactivity", months=1)
    )
    assert [(p["member"], p["points"], p["cause"]) for p in lapsing] == [("bob", 5, "inactivity")]
    rows = outbox_rows(db)
    assert len(rows) == kept + 2
    assert [(r["event_type"], r["member_ref"]) for r in rows[kept:]] == [
        ("points.expiring", "bob"), ("points.expiring", "bob"),
    ]  # fmt: skip


def test_the_expiring_command_writes_nothing_about_an_erased_member(
    db: Database, tmp_path: Path
) -> None:
    ledger = Ledger(db)
    erased_ann(db, ledger)
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    job = ["webhooks", "expiring", "--program-file", str(program), "--days", "30"]
    out = fidelite(*job, "--as-of", "2026-01-03T00:00:00Z", "--db", db.url, "-f", "json")
    assert json.loads(out.stdout) == {
        "announced": 1, "days": 30, "program": "shop", "expiring": [
            {"member": "bob", "currency": "points", "points": 30, "cause": "date",
             "expires_at": "2026-01-11T00:00:00+00:00",
             "lot_id": json.loads(out.stdout)["expiring"][0]["lot_id"], "last_activity": None},
        ],
    }  # fmt: skip
    assert [r["member_ref"] for r in outbox_rows(db) if r["event_type"] == "points.expiring"] == [
        "bob"
    ]
