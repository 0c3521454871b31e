"""A refund plays the member's tier history again with their manual assignments: an
operator's assignment is a fact the refund does not undo, so the member keeps the
assigned tier until its end, and the end is judged on the value without the refund."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update

from fidelite.engine import Event
from fidelite.engine.tiers import TierState
from fidelite.processing import EventProcessor
from fidelite.processing.tables import tier_changes
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
    - {id: platinum, name: Platinum, threshold: 1000}
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


def timeline(p: EventProcessor) -> list[tuple[str, str, str, str, Decimal, str, str | None]]:
    return [
        (r["at"].date().isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["reason"], r["event_id"])
        for r in p.tier_timeline("ann")
    ]  # fmt: skip


def assigned_gold(p: EventProcessor) -> None:
    """Silver by p1 (120 EUR on 10 January), then gold by hand from 1 February to 1 June."""
    buy(p, "p1", "120", "2026-01-10")
    p.assign_tier("ann", "gold", at=day("2026-02-01"), until=day("2026-06-01"), reason="vip")


START = [
    ("2026-01-10", "upgrade", "bronze", "silver", Decimal(120), "spend 120 reached 100",
     "p1"),
    ("2026-02-01", "assigned", "silver", "gold", Decimal(120), "vip", None),
]  # fmt: skip


def test_the_assignment_is_kept_with_its_end(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    assigned_gold(p)
    with pdb.read() as conn:
        ends = conn.execute(
            select(tier_changes.c.kind, tier_changes.c.assigned_until).order_by(tier_changes.c.id)
        ).all()
    assert [(kind, end and end == day("2026-06-01")) for kind, end in ends] == [
        ("upgrade", None),
        ("assigned", True),
    ]


def test_refund_of_a_purchase_before_the_assignment_keeps_gold_until_its_end(
    pdb: Database,
) -> None:
    """The purchase after the assignment reached platinum only with p1: refunding p1 takes
    platinum back to the assigned gold, until 1 June, not to a gold from 1 March."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    assigned_gold(p)
    buy(p, "p2", "900", "2026-03-01")  # 1020: platinum, which ends the assignment
    refund(p, "r1", "p1", "120", "2026-04-01")
    assert p.tier_standing("ann") == TierState(
        "gold", day("2026-02-01"), None, None, assigned_until=day("2026-06-01")
    )
    assert timeline(p) == [
        *START,
        ("2026-03-01", "upgrade", "gold", "platinum", Decimal(1020),
         "spend 1020 reached 1000", "p2"),
        ("2026-04-01", "upgrade_reversed", "platinum", "gold", Decimal(900),
         "refund: spend 900 no longer reaches 1000", "r1"),
    ]  # fmt: skip
    # At the assignment's end, the daily job judges the value without p1: 900, gold.
    assert [(c.kind.value, c.to_tier) for _, c in p.review_tiers(day("2026-06-01"))] == [
        ("assignment_expired", "gold")
    ]
    assert p.tier_standing("ann") == TierState("gold", day("2026-06-01"), day("2027-06-01"))


def test_refund_of_a_purchase_after_the_assignment_goes_back_to_the_assigned_tier(
    pdb: Database,
) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    assigned_gold(p)
    buy(p, "p2", "900", "2026-03-01")
    refund(p, "r2", "p2", "900", "2026-04-01")
    assert p.tier_standing("ann") == TierState(
        "gold", day("2026-02-01"), None, None, assigned_until=day("2026-06-01")
    )
    assert timeline(p)[-1] == (
        "2026-04-01", "upgrade_reversed", "platinum", "gold", Decimal(120),
        "refund: spend 120 no longer reaches 1000", "r2",
    )  # fmt: skip


def test_refund_after_the_assignment_ended_judges_its_end_without_the_purchase(
    pdb: Database,
) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    assigned_gold(p)
    buy(p, "p2", "50", "2026-03-01")
    p.review_tiers(day("2026-06-02"))  # the assignment ends on 1 June: 170, silver
    refund(p, "r1", "p1", "120", "2026-07-01")
    assert p.tier_standing("ann") == TierState("bronze", day("2026-06-01"))
    assert timeline(p) == [
        *START,
        ("2026-06-01", "assignment_expired", "gold", "silver", Decimal(170),
         "manual assignment ended; spend 170 qualifies for silver", None),
        ("2026-07-01", "assignment_expired", "silver", "bronze", Decimal(50),
         "refund: on 2026-06-01, manual assignment ended; spend 50 qualifies for bronze",
         "r1"),
    ]  # fmt: skip


def test_refund_after_the_assignment_ended_before_the_job_applies_its_end_first(
    pdb: Database,
) -> None:
    """The assignment ended on 1 June, the daily job not run yet: the refund of 5 June
    first writes the end as the job would have written it then (170, silver, the
    purchase still whole), then judges it again without the purchase, as when the job
    had run (the test above)."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    assigned_gold(p)
    buy(p, "p2", "50", "2026-03-01")
    refund(p, "r1", "p1", "120", "2026-06-05")
    assert p.tier_standing("ann") == TierState("bronze", day("2026-06-01"))
    assert timeline(p) == [
        *START,
        ("2026-06-01", "assignment_expired", "gold", "silver", Decimal(170),
         "manual assignment ended; spend 170 qualifies for silver", None),
        ("2026-06-05", "assignment_expired", "silver", "bronze", Decimal(50),
         "refund: on 2026-06-01, manual assignment ended; spend 50 qualifies for bronze",
         "r1"),
    ]  # fmt: skip
    assert p.review_tiers(day("2026-06-05")) == []


def test_refund_during_the_assignment_changes_nothing_until_the_job(pdb: Database) -> None:
    """In force: the refund leaves it alone."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    assigned_gold(p)
    buy(p, "p2", "50", "2026-03-01")
    refund(p, "r1", "p1", "120", "2026-04-01")
    assert p.tier_standing("ann") == TierState(
        "gold", day("2026-02-01"), None, None, assigned_until=day("2026-06-01")
    )
    assert timeline(p) == START
    p.review_tiers(day("2026-06-05"))
    assert p.tier_standing("ann") == TierState("bronze", day("2026-06-01"))
    assert timeline(p)[-1] == (
        "2026-06-01", "assignment_expired", "gold", "bronze", Decimal(50),
        "manual assignment ended; spend 50 qualifies for bronze", None,
    )  # fmt: skip


def test_refund_after_an_assignment_of_unknown_end_plays_from_the_base_level(
    pdb: Database,
) -> None:
    """An assignment recorded before migration 0007 and replaced by an upgrade has no
    end (``assigned_until`` NULL: the operator's was not stored). Refunding the upgrade's
    purchase plays the history from the base level, not from an older assignment that
    ran to its end, nor with the upgrade's date as the assignment's end."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    buy(p, "p1", "120", "2026-01-10")
    p.assign_tier("ann", "gold", at=day("2026-01-15"), until=day("2026-01-25"), reason="trial")
    p.review_tiers(day("2026-01-26"))  # the older assignment runs to its end: silver
    p.assign_tier("ann", "gold", at=day("2026-02-01"), until=day("2026-06-01"), reason="vip")
    buy(p, "p2", "900", "2026-03-01")  # 1020: platinum, which ends the assignment
    with pdb.write() as conn:  # as 0007 leaves an assignment replaced by an upgrade
        conn.execute(
            update(tier_changes)
            .where(tier_changes.c.kind == "assigned", tier_changes.c.reason == "vip")
            .values(assigned_until=None)
        )
    refund(p, "r2", "p2", "900", "2026-04-01")
    assert p.tier_standing("ann") == TierState("silver", day("2026-01-10"), day("2027-01-10"))
    assert timeline(p) == [
        ("2026-01-10", "upgrade", "bronze", "silver", Decimal(120),
         "spend 120 reached 100", "p1"),
        ("2026-01-15", "assigned", "silver", "gold", Decimal(120), "trial", None),
        ("2026-01-25", "assignment_expired", "gold", "silver", Decimal(120),
         "manual assignment ended; spend 120 qualifies for silver", None),
        ("2026-02-01", "assigned", "silver", "gold", Decimal(120), "vip", None),
        ("2026-03-01", "upgrade", "gold", "platinum", Decimal(1020),
         "spend 1020 reached 1000", "p2"),
        ("2026-04-01", "upgrade_reversed", "platinum", "silver", Decimal(120),
         "refund: spend 120 no longer reaches 1000", "r2"),
    ]  # fmt: skip
