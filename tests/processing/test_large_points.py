"""Awards past 32 bits: what the ledger accepts, the engine's records hold on both databases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events
from fidelite.processing.tables import earnings
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: big
name: Big
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
FIVE_BILLION = 5_000_000_000  # over 2^31 - 1 = 2,147,483,647


def event(event_id: str, kind: str, amount: str, **extra: Any) -> Event:
    return Event.model_validate(
        {"id": event_id, "type": kind, "member": "ann", "at": "2026-11-02T10:00:00+00:00",
         "amount": Decimal(amount), **extra}
    )  # fmt: skip


@pytest.mark.parametrize("path", ["single", "batch"])
def test_an_award_over_32_bits_is_recorded_and_reversed_exactly(db: Database, path: str) -> None:
    p = EventProcessor(db, parse_program(PROGRAM))
    purchase = event("p1", "purchase", f"{FIVE_BILLION}.00")
    refund = event("r1", "refund", "2000000000.00", refund_of="p1")
    if path == "single":
        p.process(purchase)
        p.process(refund)
    else:
        with db.write() as conn:
            process_events(p, conn, [purchase, refund])
    with db.read() as conn:
        row = conn.execute(select(earnings.c.points, earnings.c.reversed)).one()
    assert tuple(row) == (FIVE_BILLION, 2_000_000_000)
    assert p.ledger.balance("big", "ann", "points").available == 3_000_000_000
    assert_invariants(db, "big")


@pytest.mark.parametrize("path", ["single", "batch"])
def test_an_award_beyond_the_largest_is_traced_and_the_purchase_recorded(
    db: Database, path: str
) -> None:
    # 2,000,000,000 EUR at 1,000,000 points per EUR is more than a ledger entry holds:
    # the rule gives nothing and says why, as simulate shows, and the purchase is still
    # recorded with what its other rules gave (it used to be rejected whole).
    program = parse_program(
        PROGRAM.replace("per_amount: {points: 1}", "per_amount: {points: 1000000}")
        + "  - {id: also, on: [purchase], fixed: 5}\n"
    )
    p = EventProcessor(db, program)
    purchase = event("p1", "purchase", "2000000000.00")
    if path == "single":
        result = p.process(purchase)
    else:
        with db.write() as conn:
            (result,) = process_events(p, conn, [purchase])
    big = next(line for line in result.decision.trace if line.rule == "base")
    assert (big.outcome, big.points, big.note) == (
        "condition_error",
        0,
        "came to 2000000000000000 points, more than the largest award (1000000000000000 points)",
    )
    with db.read() as conn:
        assert [tuple(r) for r in conn.execute(select(earnings.c.points))] == [(5,)]
    assert p.ledger.balance("big", "ann", "points").available == 5
    assert_invariants(db, "big")
