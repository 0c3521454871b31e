"""Redeeming rewards through the ledger, and cancelling redemptions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, ProcessingError
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100, stock: 1}
  - {id: coffee, name: Coffee, kind: free_product, sku: ESP, cost: 30, per_member_limit: 1}
  - {id: tour, name: Tour, kind: experience, cost: 1000}
"""
AT = datetime.fromisoformat("2026-11-05T10:00:00+01:00")


def setup(db: Database, amount: str = "150.00") -> EventProcessor:
    p = EventProcessor(db, parse_program(PROGRAM))
    for member in ("ann", "bob"):
        p.process(
            Event.model_validate(
                {
                    "id": f"p-{member}",
                    "type": "purchase",
                    "member": member,
                    "at": "2026-11-02T10:00:00+01:00",
                    "amount": Decimal(amount),
                }
            )
        )
    return p


def available(p: EventProcessor, member: str) -> int:
    return p.ledger.balance("shop", member, "points", as_of=AT).available


def test_redeem_spends_cost_and_issues_code(pdb: Database) -> None:
    p = setup(pdb)
    first = p.redeem("ann", "mug", key="r1", at=AT)
    again = p.redeem("ann", "mug", key="r1", at=AT)  # retry: same redemption, no new spend
    assert again == first
    assert (first.points, first.status, first.code.startswith("RW-")) == (100, "active", True)
    assert available(p, "ann") == 50
    assert_invariants(pdb, "shop")


def test_redeem_rejections(pdb: Database) -> None:
    p = setup(pdb)
    p.redeem("ann", "mug", key="r1", at=AT)
    with pytest.raises(ProcessingError) as stock:
        p.redeem("bob", "mug", key="r2", at=AT)
    assert stock.value.code == "reward_out_of_stock"
    p.redeem("bob", "coffee", key="r3", at=AT)
    with pytest.raises(ProcessingError) as limit:
        p.redeem("bob", "coffee", key="r4", at=AT)
    assert limit.value.code == "reward_limit_reached"
    assert available(p, "bob") == 120  # only the first coffee was paid
    with pytest.raises(ProcessingError) as poor:
        p.redeem("ann", "tour", key="r5", at=AT)
    assert poor.value.code == "insufficient_points"
    assert available(p, "ann") == 50


def test_cancel_redemption_returns_points_and_stock(pdb: Database) -> None:
    p = setup(pdb)
    redemption = p.redeem("ann", "mug", key="r1", at=AT)
    cancelled = p.cancel_redemption(redemption.id, at=AT)
    assert cancelled.status == "cancelled"
    assert available(p, "ann") == 150
    assert p.redeem("bob", "mug", key="r2", at=AT).status == "active"  # stock is back
    assert_invariants(pdb, "shop")


def _refuse_cancellations(db: Database) -> None:
    """A trigger that makes the database refuse to mark a redemption cancelled."""
    with db.write() as conn:
        if db.is_postgres:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_cancel() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'cancellation refused'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_cancel BEFORE UPDATE ON redemptions "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_cancel()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_cancel BEFORE UPDATE ON redemptions "
                    "BEGIN SELECT RAISE(ABORT, 'cancellation refused'); END"
                )
            )


def _allow_cancellations(db: Database) -> None:
    with db.write() as conn:
        if db.is_postgres:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_cancel ON redemptions"))
            conn.execute(text("DROP FUNCTION IF EXISTS refuse_cancel()"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS refuse_cancel"))


def _reversals(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(
            text("SELECT count(*) FROM ledger_transactions WHERE kind = 'reverse'")
        ).scalar_one())  # fmt: skip


def test_cancel_redemption_that_fails_midway_returns_no_points(pdb: Database) -> None:
    # The points come back and the redemption is marked cancelled in one transaction:
    # when the second part fails, the first is undone with it.
    p = setup(pdb)
    redemption = p.redeem("ann", "mug", key="r1", at=AT)
    _refuse_cancellations(pdb)
    try:
        with pytest.raises(DBAPIError, match="cancellation refused"):
            p.cancel_redemption(redemption.id, at=AT)
        assert available(p, "ann") == 50
        assert _reversals(pdb) == 0
    finally:
        _allow_cancellations(pdb)
    with pytest.raises(ProcessingError) as stock:  # still active: the stock is still taken
        p.redeem("bob", "mug", key="r2", at=AT)
    assert stock.value.code == "reward_out_of_stock"
    assert p.cancel_redemption(redemption.id, at=AT).status == "cancelled"
    assert (available(p, "ann"), _reversals(pdb)) == (150, 1)
    assert_invariants(pdb, "shop")


def test_cancel_redemption_again_changes_nothing(pdb: Database) -> None:
    p = setup(pdb)
    redemption = p.redeem("ann", "mug", key="r1", at=AT)
    first = p.cancel_redemption(redemption.id, at=AT)
    later = AT.replace(day=6)
    assert p.cancel_redemption(redemption.id, at=later) == first
    assert (available(p, "ann"), _reversals(pdb)) == (150, 1)
    with pytest.raises(ProcessingError) as unknown:
        p.cancel_redemption(redemption.id + 1, at=AT)
    assert unknown.value.code == "unknown_redemption"
    assert_invariants(pdb, "shop")
