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


def test_cancel_after_two_refunds_restores_what_the_first_took_from_the_second(
    pdb: Database,
) -> None:
    # The refund of o1 takes 150 of o2's points in place of its spent ones, so o2's
    # partial refund finds o2's points gone and writes off 100. The cancellation restores
    # both write-offs: the member keeps the 100 points of o2's unrefunded 100 (it gave
    # back 150, restoring only 50 of o2's write-off), as under ``debt``.
    program = PROGRAM.replace("cost: 60", "cost: 1050")
    p = EventProcessor(pdb, parse_program(program), clock=lambda: T0 + timedelta(hours=5))

    def event(event_id: str, kind: str, minutes: int, amount: str, of: str | None = None) -> None:
        fields = {"id": event_id, "type": kind, "member": "ann", "amount": amount,
                  "at": (T0 + timedelta(minutes=minutes)).isoformat()}  # fmt: skip
        if of is not None:
            fields["refund_of"] = of
        assert p.process(Event.model_validate(fields)).outcome == "processed"

    event("o1", "purchase", 0, "1000")
    event("o2", "purchase", 1, "200")
    redemption = p.redeem("ann", "mug", key="r1", at=T0 + timedelta(minutes=2))
    event("rf1", "refund", 3, "1000", "o1")
    event("rf2", "refund", 4, "100", "o2")
    assert p.ledger.balance("shop", "ann", "points").available == 0
    done = p.cancel_redemption(redemption.id, at=T0 + timedelta(hours=2))
    back = done.returned
    assert back is not None
    assert (back.spendable, back.expired, back.debt_repaid, back.written_off_restored) == (
        100, 0, 0, 950,
    )  # fmt: skip
    balance = p.ledger.balance("shop", "ann", "points")
    assert (balance.available, balance.debt) == (100, 0)
    assert_invariants(pdb, "shop")
