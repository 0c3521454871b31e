"""A small refund that keeps the member's level changes none of its dates, even when the
program's ladder changed since the refunded purchase.

e1 (250) under silver 300: bronze. The file lowers silver to 200; e2 (10) reaches it:
silver from e2's date, re-qualification a year later (the same with silver at 200 added to a ladder
that had none). 5 of e1 refunded: spend 255,
still silver. Played again with today's ladder, the history would reach silver at e1's
date; the member's silver and its next re-qualification stay dated from e2.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  metric: spend
  window: rolling
  window_months: 12
  requalify_months: 12
  grace_months: 0
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
SILVER
"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+00:00")


def send(p: EventProcessor, event_id: str, when: str, amount: int, of: str = "") -> None:
    kind = "refund" if of else "purchase"
    p.process(Event(id=event_id, type=kind, member="ann", at=day(when),
                    amount=Decimal(amount), refund_of=of or None))  # fmt: skip


LEVEL = "    - {id: silver, name: Silver, threshold: %s}"


@pytest.mark.parametrize("was", [LEVEL % 300, ""], ids=["threshold_lowered", "level_added"])
def test_a_partial_refund_keeping_the_level_after_a_ladder_change_moves_no_date(
    pdb: Database, was: str
) -> None:
    """Silver at 300 lowered to 200, or silver at 200 added to the ladder."""
    before = EventProcessor(pdb, parse_program(PROGRAM.replace("SILVER", was)))
    send(before, "e1", "2026-10-01", 250)
    assert before.tier_standing("ann").tier == "bronze"
    p = EventProcessor(pdb, parse_program(PROGRAM.replace("SILVER", LEVEL % 200)))
    send(p, "e2", "2026-12-07", 10)
    standing = p.tier_standing("ann")
    assert (standing.tier, standing.since, standing.review_at) == (
        "silver",
        day("2026-12-07"),
        datetime.fromisoformat("2027-12-07T10:00:00+00:00"),
    )
    timeline = p.tier_timeline("ann")
    send(p, "r1", "2026-12-08", 5, "e1")
    assert p.tier_standing("ann") == standing
    assert p.tier_timeline("ann") == timeline
    assert p.ledger.balance("shop", "ann", "points").available == 255
    assert_invariants(pdb, "shop")
