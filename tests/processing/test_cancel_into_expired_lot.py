"""Cancelling a redemption whose points came from a lot that has expired since: the
points go back to that lot, which keeps its date, so they expire at once (recorded as
expired, not spendable), and every answer says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.tables import outbox

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: coffee, name: Coffee, kind: free_product, sku: ESP, cost: 100}
  - {id: cake, name: Cake, kind: free_product, sku: CAKE, cost: 120}
"""
T0 = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
LOT_ENDS = T0 + timedelta(hours=1)
LATER = T0 + timedelta(hours=2)


def setup(db: Database, reward: str) -> tuple[EventProcessor, int]:
    p = EventProcessor(db, parse_program(PROGRAM), clock=lambda: LATER)
    p.ledger.create_member("shop", "pb")
    p.ledger.earn("shop", "pb", "points", 100, key="e1", at=T0, expires_at=LOT_ENDS)
    p.ledger.earn("shop", "pb", "points", 50, key="e2", at=T0)
    redemption = p.redeem("pb", reward, key="r1", at=T0 + timedelta(minutes=10))
    return p, redemption.id


def available(p: EventProcessor, at: datetime) -> int:
    return p.ledger.balance("shop", "pb", "points", as_of=at).available


def expired_total(db: Database) -> int:
    with db.read() as conn:
        found = conn.execute(
            text(
                "SELECT COALESCE(SUM(points), 0) FROM ledger_transactions "
                "WHERE program_id = 'shop' AND kind = 'expire'"
            )
        ).scalar_one()
    return int(found)


def cancelled_payload(db: Database) -> dict[str, object]:
    with db.read() as conn:
        rows = conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "reward.cancelled")
        ).all()
    assert len(rows) == 1
    payload = dict(rows[0][0])
    payload.pop("transaction_id")
    return payload


def test_points_of_an_expired_lot_expire_at_once_and_the_answer_says_so(pdb: Database) -> None:
    p, rid = setup(pdb, "coffee")
    assert available(p, LATER) == 50
    done = p.cancel_redemption(rid, at=LATER)
    assert done.status == "cancelled"
    assert done.returned is not None
    assert (done.returned.spendable, done.returned.expired, done.returned.debt_repaid) == (
        0,
        100,
        0,
    )
    assert done.returned.expired_lots == ((LOT_ENDS, 100),)
    assert available(p, LATER) == 50  # nothing spendable came back, and none is claimed
    assert expired_total(pdb) == 100  # recorded as expired (breakage), as of the cancel
    history = p.ledger.history("shop", "pb", currency="points")
    assert [(h.kind, h.available_change) for h in history][:2] == [
        ("expire", -100),
        ("reverse", 100),
    ]
    assert p.ledger.expire("shop", LATER + timedelta(days=1)).transactions == 0  # nothing left
    assert expired_total(pdb) == 100
    assert cancelled_payload(pdb) == {
        "member": "pb", "redemption_id": rid, "reward_id": "coffee", "points": 100,
        "currency": "points", "points_spendable": 0, "points_expired": 100, "debt_repaid": 0,
        "written_off_restored": 0,
        "expired_lots": [{"expires_at": LOT_ENDS.isoformat(), "points": 100}],
        "cancelled_at": LATER.isoformat(),
    }  # fmt: skip
    again = p.cancel_redemption(rid, at=LATER + timedelta(days=3))  # a retry: same answer
    assert (again.replayed, again.returned) == (True, done.returned)
    assert p.redemption(rid).returned == done.returned
    assert expired_total(pdb) == 100
    assert_invariants(pdb, "shop")


def test_a_cancel_split_between_an_expired_lot_and_a_valid_one(pdb: Database) -> None:
    p, rid = setup(pdb, "cake")  # 100 from the lot ending first, 20 from the other
    assert available(p, LATER) == 30
    done = p.cancel_redemption(rid, at=LATER)
    assert done.returned is not None
    assert (done.returned.spendable, done.returned.expired) == (20, 100)
    assert available(p, LATER) == 50
    assert expired_total(pdb) == 100
    assert_invariants(pdb, "shop")


def test_a_cancel_before_the_lot_ends_gives_everything_back(pdb: Database) -> None:
    p, rid = setup(pdb, "coffee")
    done = p.cancel_redemption(rid, at=T0 + timedelta(minutes=20))
    assert done.returned is not None
    assert (done.returned.spendable, done.returned.expired) == (100, 0)
    assert done.returned.expired_lots == ()
    assert available(p, T0 + timedelta(minutes=20)) == 150
    assert expired_total(pdb) == 0
    assert_invariants(pdb, "shop")
