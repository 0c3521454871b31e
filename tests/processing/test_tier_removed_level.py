"""A member on a level the program file no longer has (removed after they reached it)
is moved to the level their qualifying value reaches, at their next event, refund,
redemption, assignment or daily review, with a ``downgrade`` entry naming the removed
level: never a failed event or a stopped job. The batch path of bulk import agrees.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from fidelite.engine import Event
from fidelite.processing import EventProcessor, Result
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: p4
name: P4
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1.00}}
tiers:
  metric: spend
  window: rolling
  window_months: 12
  requalify_months: 12
  grace_months: 0
  downgrade: one_level
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
    - {id: gold, name: Gold, threshold: 1000}
"""

NO_GOLD = PROGRAM.replace("    - {id: gold, name: Gold, threshold: 1000}\n", "")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def buy(event_id: str, member: str, amount: str, when: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at(when),
                 amount=Decimal(amount))  # fmt: skip


def rows(p: EventProcessor, member: str) -> list[tuple[Any, ...]]:
    return [
        (r["at"].astimezone().isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["reason"], r["event_id"])
        for r in p.tier_timeline(member)
    ]  # fmt: skip


def apply(p: EventProcessor, events: list[Event], batch: bool) -> list[Any]:
    if not batch:
        return [p.process(event) for event in events]
    with p.db.write() as conn:
        return process_events(p, conn, events)


GOLD = ("2026-01-10T09:00:00+00:00", "upgrade", "bronze", "gold", Decimal("1100.0000"),
        "spend 1100 reached 1000", "g1")  # fmt: skip


def gold_member(pdb: Database) -> EventProcessor:
    """G gold from a purchase of 1100 on 2026-01-10; then gold leaves the program."""
    EventProcessor(pdb, parse_program(PROGRAM)).process(
        buy("g1", "G", "1100", "2026-01-10T10:00:00+01:00")
    )
    return EventProcessor(pdb, parse_program(NO_GOLD))


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_an_event_moves_the_member_off_the_removed_level_first(pdb: Database, batch: bool) -> None:
    p = gold_member(pdb)
    (answer,) = apply(p, [buy("g2", "G", "50", "2026-02-01T10:00:00+01:00")], batch)
    assert isinstance(answer, Result)
    assert answer.outcome.value == "processed"
    assert rows(p, "G") == [
        GOLD,
        ("2026-02-01T09:00:00+00:00", "downgrade", "gold", "silver", Decimal("1100.0000"),
         "level gold is no longer in the program; spend 1100 qualifies for silver", None),
    ]  # fmt: skip
    standing = p.tier_standing("G")
    assert standing is not None
    assert (standing.tier, standing.since, standing.review_at) == (
        "silver", at("2026-02-01T10:00:00+01:00"), at("2027-02-01T10:00:00+01:00"))  # fmt: skip
    assert p.review_tiers(at("2026-03-01T00:00:00+01:00")) == []


def test_the_review_moves_the_member_when_nothing_is_due(pdb: Database) -> None:
    p = gold_member(pdb)
    done = p.review_tiers(at("2026-03-01T00:00:00+01:00"))
    assert [(ref, c.kind.value, c.from_tier, c.to_tier, c.reason) for ref, c in done] == [
        ("G", "downgrade", "gold", "silver",
         "level gold is no longer in the program; spend 1100 qualifies for silver"),
    ]  # fmt: skip
    assert rows(p, "G")[-1][:2] == ("2026-02-28T23:00:00+00:00", "downgrade")
    assert p.member_tier("G") == "silver"
    assert p.review_tiers(at("2026-03-01T00:00:00+01:00")) == []  # safe to re-run


def test_the_review_moves_the_member_when_their_gold_review_is_due(pdb: Database) -> None:
    """Gold's re-qualification (2027-01-10) has passed: the member is moved at the run
    by the value then (0: bronze), and another member due at once is reviewed too."""
    p = gold_member(pdb)
    p.process(buy("s1", "S", "400", "2026-01-10T10:00:00+01:00"))  # silver, due 2027-01-10
    done = p.review_tiers(at("2027-01-15T00:00:00+01:00"))
    assert [(ref, c.kind.value, c.from_tier, c.to_tier, c.value, c.reason)
            for ref, c in done] == [
        ("G", "downgrade", "gold", "bronze", Decimal("0.0000"),
         "level gold is no longer in the program; spend 0 qualifies for bronze"),
        ("S", "downgrade", "silver", "bronze", Decimal("0.0000"),
         "spend 0 below 300 at re-qualification"),
    ]  # fmt: skip
    standing = p.tier_standing("G")
    assert standing is not None
    assert (standing.tier, standing.review_at) == ("bronze", None)


def test_a_refund_moves_the_member_off_the_removed_level(pdb: Database) -> None:
    p = gold_member(pdb)
    answer = p.process(Event(id="r1", type="refund", member="G",
                             at=at("2026-02-01T10:00:00+01:00"), amount=Decimal("900"),
                             refund_of="g1"))  # fmt: skip
    assert isinstance(answer, Result)
    # moved first by the value before the refund, then the refund plays the history
    # again without what it took back, as for any level
    assert rows(p, "G")[1:] == [
        ("2026-02-01T09:00:00+00:00", "downgrade", "gold", "silver", Decimal("1100.0000"),
         "level gold is no longer in the program; spend 1100 qualifies for silver", None),
        ("2026-02-01T09:00:00+00:00", "upgrade_reversed", "silver", "bronze",
         Decimal("200.0000"), "refund: spend 200 no longer reaches 300", "r1"),
    ]  # fmt: skip
    assert p.member_tier("G") == "bronze"


def test_an_assignment_moves_the_member_off_the_removed_level_first(pdb: Database) -> None:
    p = gold_member(pdb)
    p.assign_tier("G", "bronze", at=at("2026-02-01T10:00:00+01:00"),
                  until=at("2026-03-01T10:00:00+01:00"), reason="test")  # fmt: skip
    assert [r[1:4] for r in rows(p, "G")[1:]] == [
        ("downgrade", "gold", "silver"),
        ("assigned", "silver", "bronze"),
    ]
