"""A late refund through the processor: the tier history played again without it.

The level held before the refunded purchase comes back with its own dates, and the
re-qualifications between the purchase and the refund that go otherwise without it are
on the member's timeline, each with its reason, dated at the refund.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fidelite.engine import Event
from fidelite.engine.tiers import TierState
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
    - {id: gold, name: Gold, threshold: 500}
"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+01:00")


def buy(p: EventProcessor, event_id: str, amount: str, when: str) -> None:
    p.process(
        Event(id=event_id, type="purchase", member="ann", at=day(when), amount=Decimal(amount))
    )


def refund(p: EventProcessor, event_id: str, purchase: str, amount: str, when: str) -> None:
    p.process(Event(id=event_id, type="refund", member="ann", at=day(when),
                    amount=Decimal(amount), refund_of=purchase))  # fmt: skip


# Amounts come back from the store with its 4 decimals, and so do values summed from
# them in reasons (an empty window sums to a plain 0).


def timeline(p: EventProcessor) -> list[tuple[str, str, str, str, Decimal, str, str | None]]:
    return [
        (r["at"].date().isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["reason"], r["event_id"])
        for r in p.tier_timeline("ann")
    ]  # fmt: skip


def test_refund_of_the_purchase_that_ended_a_grace_period_after_its_end(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    buy(p, "p1", "600", "2025-02-01")  # gold, review 2026-02-01
    p.review_tiers(day("2026-02-01"))  # p1 has left the window: grace until 2026-03-01
    buy(p, "p2", "500", "2026-02-10")  # 500: the grace ends, gold kept until 2027-02-10
    refund(p, "r2", "p2", "500", "2026-04-01")
    # Without p2 the grace ran to its end: one level down on 2026-03-01.
    assert timeline(p) == [
        ("2025-02-01", "upgrade", "bronze", "gold", Decimal(600), "spend 600 reached 500",
         "p1"),
        ("2026-02-01", "grace_started", "gold", "gold", Decimal(0),
         "spend 0 below 500; grace until 2026-03-01", None),
        ("2026-02-10", "requalified", "gold", "gold", Decimal(500), "spend 500 meets 500",
         "p2"),
        ("2026-04-01", "downgrade", "gold", "silver", Decimal(0),
         "refund: on 2026-03-01, spend 0 below 500 at re-qualification", "r2"),
    ]  # fmt: skip
    assert p.tier_standing("ann") == TierState(
        "silver", day("2026-03-01"), review_at=day("2027-03-01")
    )
    # The daily job finds nothing left to do up to then.
    assert p.review_tiers(day("2027-02-28")) == []


def test_refund_of_an_upgrade_from_a_grace_period_goes_back_into_it(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    buy(p, "p1", "150", "2025-02-01")  # silver, review 2026-02-01
    p.review_tiers(day("2026-02-01"))  # grace until 2026-03-01
    buy(p, "p2", "500", "2026-02-10")  # gold
    refund(p, "r2", "p2", "500", "2026-02-20")
    assert p.tier_standing("ann") == TierState(
        "silver", day("2025-02-01"), review_at=day("2026-02-01"), grace_until=day("2026-03-01")
    )
    changes = p.review_tiers(day("2026-03-01"))
    assert [(c.kind.value, c.from_tier, c.to_tier) for _, c in changes] == [
        ("downgrade", "silver", "bronze")
    ]
    assert timeline(p)[-2:] == [
        ("2026-02-20", "upgrade_reversed", "gold", "silver", Decimal(0),
         "refund: spend 0 no longer reaches 500", "r2"),
        ("2026-03-01", "downgrade", "silver", "bronze", Decimal(0),
         "spend 0 below 100 at re-qualification", None),
    ]  # fmt: skip
    assert p.member_tier("ann") == "bronze"
