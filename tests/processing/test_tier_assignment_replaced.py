"""An assignment replaces the one before it: when the later one ends, the earlier one
does not come back.

Correcting an assignment (gold by mistake, then silver for a month) or ending it early
(the same level again with an earlier end) leaves, at the later one's end, the level
the member's value qualifies for, not the replaced assignment's level and end. The
daily job, an event after the end (single path and the import's batch path) and a later
refund agree. The batch path sends only the event whose member's assignment ends to the
single path; the other members' events stay in the fast path, with the same results.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

import fidelite.processing.batch as batch_module
from fidelite.engine import Event
from fidelite.engine.tiers import TierState
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: pa
name: PA
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
  grace_months: 3
  downgrade: one_level
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300, earn_multiplier: 1.5}
    - {id: gold, name: Gold, threshold: 1000, earn_multiplier: 2}
"""

ENDED = "manual assignment ended; spend 100 qualifies for bronze"


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def buy(event_id: str, member: str, amount: str, when: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at(when),
                 amount=Decimal(amount))  # fmt: skip


def rows(p: EventProcessor, member: str) -> list[tuple[Any, ...]]:
    return [
        (r["at"].isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"], r["reason"])
        for r in p.tier_timeline(member)
    ]  # fmt: skip


def send(p: EventProcessor, events: list[Event], *, batch: bool) -> None:
    if not batch:
        for event in events:
            p.process(event)
        return
    with p.db.write() as conn:
        process_events(p, conn, events)


def corrected(p: EventProcessor, member: str) -> None:
    """Spend 100 (bronze); gold until 2027-01-01 by mistake, replaced by silver until
    2026-03-01."""
    p.process(buy(f"{member}-a", member, "100", "2025-12-01T10:00:00+01:00"))
    p.assign_tier(member, "gold", at=at("2026-01-05T10:00:00+01:00"),
                  until=at("2027-01-01T00:00:00+01:00"), reason="oops")  # fmt: skip
    p.assign_tier(member, "silver", at=at("2026-02-01T10:00:00+01:00"),
                  until=at("2026-03-01T00:00:00+01:00"), reason="correction")  # fmt: skip


CORRECTED = [
    ("2026-01-05T09:00:00+00:00", "assigned", "bronze", "gold", Decimal("100.0000"), "oops"),
    ("2026-02-01T09:00:00+00:00", "assigned", "gold", "silver", Decimal("100.0000"),
     "correction"),
    ("2026-02-28T23:00:00+00:00", "assignment_expired", "silver", "bronze",
     Decimal("100.0000"), ENDED),
]  # fmt: skip
BRONZE = TierState("bronze", at("2026-02-28T23:00:00+00:00"), None)


@pytest.mark.parametrize("how", ["job", "single", "batch"])
def test_a_corrected_assignment_does_not_come_back(pdb: Database, how: str) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    corrected(p, "M")
    if how == "job":
        done = p.review_tiers(at("2026-03-02T00:00:00+00:00"))
        assert [(ref, c.kind.value, c.from_tier, c.to_tier) for ref, c in done] == [
            ("M", "assignment_expired", "silver", "bronze")
        ]
    else:
        send(p, [buy("M-b", "M", "10", "2026-03-05T10:00:00+01:00")], batch=how == "batch")
    assert rows(p, "M") == CORRECTED
    assert p.tier_standing("M") == BRONZE
    # bronze earns x1 on the later purchase
    assert p.ledger.balance("pa", "M", "points").available == (100 if how == "job" else 110)
    assert p.review_tiers(at("2026-06-01T00:00:00+00:00")) == []


def test_a_refund_after_the_end_keeps_bronze(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    corrected(p, "M")
    p.review_tiers(at("2026-03-02T00:00:00+00:00"))
    p.process(Event(id="r", type="refund", member="M", at=at("2026-03-10T10:00:00+01:00"),
                    amount=Decimal("50"), refund_of="M-a"))  # fmt: skip
    assert rows(p, "M") == CORRECTED
    assert p.tier_standing("M") == BRONZE
    assert p.ledger.balance("pa", "M", "points").available == 50


def test_an_assignment_shortened_by_a_new_one_ends_at_the_new_end(pdb: Database) -> None:
    """Gold until 2027-01-01, gold again until 2026-02-10 to end it early: bronze at
    2026-02-10, not gold until 2027."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.process(buy("a", "M", "100", "2025-12-01T10:00:00+01:00"))
    p.assign_tier("M", "gold", at=at("2026-01-05T10:00:00+01:00"),
                  until=at("2027-01-01T00:00:00+01:00"), reason="promo")  # fmt: skip
    p.assign_tier("M", "gold", at=at("2026-02-01T10:00:00+01:00"),
                  until=at("2026-02-10T00:00:00+01:00"), reason="end promo early")  # fmt: skip
    p.review_tiers(at("2026-02-11T00:00:00+00:00"))
    assert rows(p, "M") == [
        ("2026-01-05T09:00:00+00:00", "assigned", "bronze", "gold", Decimal("100.0000"),
         "promo"),
        ("2026-02-01T09:00:00+00:00", "assigned", "gold", "gold", Decimal("100.0000"),
         "end promo early"),
        ("2026-02-09T23:00:00+00:00", "assignment_expired", "gold", "bronze",
         Decimal("100.0000"), ENDED),
    ]  # fmt: skip
    assert p.tier_standing("M") == TierState("bronze", at("2026-02-09T23:00:00+00:00"), None)


def test_the_batch_sends_only_the_ending_members_event_alone(
    pdb: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Members A, M, B, C in one import chunk; only M's assignment ends before their
    event: that one event goes through the single path, in its place, the others through
    the fast path; every member ends as the single path leaves them."""
    events = [
        buy("A-1", "A", "400", "2026-03-05T10:00:00+01:00"),
        buy("M-b", "M", "10", "2026-03-05T11:00:00+01:00"),
        buy("B-1", "B", "20", "2026-03-05T12:00:00+01:00"),
        buy("M-c", "M", "30", "2026-03-05T13:00:00+01:00"),
        buy("C-1", "C", "1000", "2026-03-05T14:00:00+01:00"),
    ]
    alone: list[str] = []
    one = batch_module.process_one

    def spy(processor: EventProcessor, conn: Any, event: Event) -> Any:
        alone.append(event.id)
        return one(processor, conn, event)

    monkeypatch.setattr(batch_module, "process_one", spy)
    p = EventProcessor(pdb, parse_program(PROGRAM))
    for ref in ("A", "B"):
        p.process(buy(f"{ref}-0", ref, "5", "2025-12-01T10:00:00+01:00"))
    corrected(p, "M")
    send(p, events, batch=True)
    assert alone == ["M-b"]
    assert rows(p, "M") == CORRECTED
    assert p.tier_standing("M") == BRONZE
    figures = {ref: (p.tier_standing(ref), p.ledger.balance("pa", ref, "points").available)
               for ref in ("A", "M", "B", "C")}  # fmt: skip
    assert figures["M"][1] == 100 + 10 + 30
    assert figures["A"] == (
        TierState("silver", at("2026-03-05T09:00:00+00:00"), at("2027-03-05T09:00:00+00:00")),
        5 + 400,
    )
    assert figures["C"][0].tier == "gold"
    assert figures["C"][1] == 1000
    assert figures["B"] == (TierState("bronze", figures["B"][0].since, None), 25)
