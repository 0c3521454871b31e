"""Tier movements recorded on the member's timeline by the processor."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  grace_months: 1
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
    - {id: gold, name: Gold, threshold: 500, earn_multiplier: 2}
"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+01:00")


def buy(p: EventProcessor, event_id: str, amount: str, when: str) -> None:
    p.process(
        Event(id=event_id, type="purchase", member="ann", at=day(when), amount=Decimal(amount))
    )


def timeline(p: EventProcessor) -> list[tuple[str, str, str, str]]:
    return [
        (r["at"].date().isoformat(), r["kind"], r["from_tier"], r["to_tier"])
        for r in p.tier_timeline("ann")
    ]


def test_tiers_move_up_at_once_and_down_after_grace(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    buy(p, "p1", "120", "2026-01-10")  # silver
    buy(p, "p2", "400", "2026-02-10")  # 520: gold, review 2027-02-10
    # Gold earns double: 30 points plus a tier bonus of 30 for the next purchase.
    buy(p, "p3", "30", "2026-03-01")
    balance = p.ledger.balance("shop", "ann", "points", as_of=day("2026-03-02"))
    assert balance.available == 120 + 400 + 30 + 30
    assert p.review_tiers(day("2027-02-09")) == []
    # Window (2026-02-10, 2027-02-10]: only the 30 of p3: grace, then one level down.
    changes = p.review_tiers(day("2027-03-10"))
    assert [(ref, c.kind.value, c.to_tier) for ref, c in changes] == [
        ("ann", "grace_started", "gold"),
        ("ann", "downgrade", "silver"),
    ]
    assert p.review_tiers(day("2027-03-10")) == []  # re-running changes nothing
    assert p.member_tier("ann") == "silver"
    assert timeline(p) == [
        ("2026-01-10", "upgrade", "bronze", "silver"),
        ("2026-02-10", "upgrade", "silver", "gold"),
        ("2027-02-10", "grace_started", "gold", "gold"),
        ("2027-03-10", "downgrade", "gold", "silver"),
    ]


def test_assign_tier_by_hand_until_a_date(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    change = p.assign_tier("ann", "gold", at=day("2026-01-01"), until=day("2026-02-01"),
                           reason="service outage goodwill")  # fmt: skip
    assert (change.kind.value, change.to_tier, change.reason) == (
        "assigned",
        "gold",
        "service outage goodwill",
    )
    p.review_tiers(day("2026-02-01"))
    assert p.member_tier("ann") == "bronze"
    assert timeline(p)[-1] == ("2026-02-01", "assignment_expired", "gold", "bronze")
