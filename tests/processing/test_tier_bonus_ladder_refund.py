"""A refund takes back the tier bonus of every level it undoes, one refund at a time.

Ladder bronze 0, silver 500 (x2), gold 1000 (x3), on spend. p2 (100) earned on gold:
100 + 200 bonus. Refunds that take gold away one level at a time leave p2 100 at the
end, as if the member had never left bronze; so does a refund of a purchase made before
a manual assignment, for an event dated before that assignment.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.tables import earnings as event_earnings
from fidelite.processing.tables import events
from fidelite.program import parse_program
from fidelite.store import Database

LADDER = """\
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
    - {id: silver, name: Silver, threshold: 500, earn_multiplier: 2}
    - {id: gold, name: Gold, threshold: 1000, earn_multiplier: 3}
"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+00:00")


def send(p: EventProcessor, event_id: str, when: str, amount: int, of: str = "") -> None:
    kind = "refund" if of else "purchase"
    p.process(Event(id=event_id, type=kind, member="ann", at=day(when),
                    amount=Decimal(amount), refund_of=of or None))  # fmt: skip


def available(p: EventProcessor) -> int:
    return p.ledger.balance("shop", "ann", "points").available


def reversed_of(db: Database) -> dict[str, tuple[int, int]]:
    with db.read() as conn:
        rows = conn.execute(select(event_earnings.c.event_id, event_earnings.c.points,
                                   event_earnings.c.reversed)).all()  # fmt: skip
    return {r.event_id: (int(r.points), int(r.reversed)) for r in rows}


def bonus_lines(p: EventProcessor, refund: str) -> list[tuple[str, int, str, str]]:
    """The refund's tier bonus lines: (event, bonus, level taken back, level now)."""
    with p.db.read() as conn:
        trace = conn.execute(select(events.c.trace).where(events.c.event_id == refund)).scalar()
    return [(line["tier_bonus_of"], line["bonus"], line["tier"], line["now"])
            for line in trace or [] if "tier_bonus_of" in line]  # fmt: skip


def test_gold_undone_in_two_partial_refunds_takes_back_both_levels_bonus(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(LADDER))
    send(p, "pA", "2026-01-01", 1000)
    send(p, "p2", "2026-01-02", 100)
    assert reversed_of(pdb)["p2"] == (300, 0)
    send(p, "r1", "2026-01-10", 100, "pA")  # 900: silver at p2's date, gold from p2 on
    assert (p.tier_standing("ann").tier, reversed_of(pdb)["p2"]) == ("gold", (300, 100))
    assert bonus_lines(p, "r1") == [("p2", 100, "gold", "silver")]
    send(p, "r2", "2026-01-11", 900, "pA")  # spend 100: bronze
    assert p.tier_standing("ann").tier == "bronze"
    assert reversed_of(pdb)["p2"] == (300, 200)
    assert bonus_lines(p, "r2") == [("p2", 100, "silver", "bronze")]
    assert available(p) == 100
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("order", [("rA", "rB"), ("rB", "rA")])
def test_two_upgrading_purchases_refunded_one_after_the_other(
    pdb: Database, order: tuple[str, str]
) -> None:
    p = EventProcessor(pdb, parse_program(LADDER))
    send(p, "pA", "2026-01-01", 500)  # silver
    send(p, "pB", "2026-01-02", 500)  # gold
    send(p, "p2", "2026-01-03", 100)
    assert available(p) == 1800  # pB on silver: 500 + 500
    of = {"rA": "pA", "rB": "pB"}
    send(p, order[0], "2026-01-10", 500, of[order[0]])
    assert (p.tier_standing("ann").tier, available(p)) == ("silver", 700)  # p2: 200
    send(p, order[1], "2026-01-11", 500, of[order[1]])
    assert p.tier_standing("ann").tier == "bronze"
    assert available(p) == 100  # p2 as on bronze
    assert reversed_of(pdb)["p2"] == (300, 200)
    assert_invariants(pdb, "shop")


def test_an_event_before_a_manual_assignment_gives_back_the_bonus_of_the_level_undone(
    pdb: Database,
) -> None:
    """p1 (1000, gold), p2 on gold; silver assigned by hand from 01-05 to 03-01, gold
    again at its end; p3 on gold. Refund of p1: neither p2 nor p3 was due gold."""
    p = EventProcessor(pdb, parse_program(LADDER))
    send(p, "p1", "2026-01-01", 1000)
    send(p, "p2", "2026-01-02", 100)
    p.assign_tier("ann", "silver", at=day("2026-01-05"), until=day("2026-03-01"), reason="vip")
    p.review_tiers(day("2026-03-02"))
    assert p.tier_standing("ann").tier == "gold"
    send(p, "p3", "2026-03-10", 100)
    assert available(p) == 1600
    send(p, "r1", "2026-03-20", 1000, "p1")
    assert reversed_of(pdb) == {"p1": (1000, 1000), "p2": (300, 200), "p3": (300, 200)}
    assert sorted(bonus_lines(p, "r1")) == [("p2", 200, "gold", "bronze"),
                                            ("p3", 200, "gold", "bronze")]  # fmt: skip
    assert available(p) == 200
    assert_invariants(pdb, "shop")
