"""Cancelling a redemption whose points were written off by a full refund of the
purchase they came from (``shortfall: within_balance``): the points go back to the
write-off, and every answer says so (``written_off_restored``), not that they repaid
a debt the member never had. Real databases (SQLite file, then PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fidelite.engine.event import Event
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
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 60}
refunds:
  shortfall: within_balance
"""
T0 = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


def test_cancel_after_a_refund_wrote_the_points_off_says_they_went_back_there(
    pdb: Database,
) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: T0 + timedelta(hours=3))
    p.process(Event.model_validate({"id": "o1", "type": "purchase", "member": "ann",
                                    "at": T0.isoformat(), "amount": "100"}))  # fmt: skip
    redemption = p.redeem("ann", "mug", key="r1", at=T0 + timedelta(minutes=10))
    refund = p.process(Event.model_validate({
        "id": "rf1", "type": "refund", "member": "ann", "refund_of": "o1",
        "at": (T0 + timedelta(hours=1)).isoformat(), "amount": "100"}))  # fmt: skip
    assert refund.outcome == "processed"
    done = p.cancel_redemption(redemption.id, at=T0 + timedelta(hours=2))
    back = done.returned
    assert back is not None
    assert (back.spendable, back.expired, back.debt_repaid, back.written_off_restored) == (
        0, 0, 0, 60,
    )  # fmt: skip
    balance = p.ledger.balance("shop", "ann", "points")
    assert (balance.available, balance.debt) == (0, 0)
    assert p.redemption(redemption.id).returned == back
    with pdb.read() as conn:
        (payload,) = conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "reward.cancelled")
        ).scalars()
    assert (payload["points_spendable"], payload["debt_repaid"],
            payload["written_off_restored"]) == (0, 0, 60)  # fmt: skip
    assert_invariants(pdb, "shop")
