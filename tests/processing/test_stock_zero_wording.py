"""A reward with stock 0 is refused in words that make sense."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 10, stock: 0}
"""
AT = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


def test_stock_zero_says_the_program_gives_none(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: AT)
    p.ledger.create_member("shop", "ann")
    p.ledger.earn("shop", "ann", "points", 50, key="e1", at=AT)
    with pytest.raises(ProcessingError) as refused:
        p.redeem("ann", "mug", key="r1", at=AT)
    assert (refused.value.code, refused.value.message) == (
        "reward_out_of_stock",
        "cannot redeem 'mug': out of stock: the program gives none of it (stock 0)",
    )
    assert p.ledger.balance("shop", "ann", "points", as_of=AT).available == 50
