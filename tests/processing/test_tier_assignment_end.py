"""The end of a manual assignment leaves the member where they would have been without it.

A member in grace, or due a one-level downgrade, given a level by hand for a while does
not lose the grace period or fall two levels when it ends: they take the level (and
its dates) the history without the assignment gives, or the level their value qualifies
for when that is higher. The daily job, an event after the end (single path and the
import's batch path) write the same entry and leave the same state.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

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

NO_GRACE = PROGRAM.replace("grace_months: 3", "grace_months: 0")


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


def test_a_member_in_grace_keeps_level_and_grace_after_a_short_assignment(
    pdb: Database,
) -> None:
    """Silver in grace until 2027-02-01, gold by hand for a week: at its end silver
    again, grace until 2027-02-01, as the same member without the assignment; the grace
    then ends with one level down, as for any downgrade."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    for ref in ("M", "MB"):
        p.process(buy(f"{ref}1", ref, "300", "2025-11-01T10:00:00+01:00"))
    p.review_tiers(at("2026-11-02T00:00:00+00:00"))  # both: grace until 2027-02-01
    p.assign_tier("M", "gold", at=at("2026-12-01T10:00:00+00:00"),
                  until=at("2026-12-07T10:00:00+00:00"), reason="goodwill")  # fmt: skip
    assert p.review_tiers(at("2026-12-06T00:00:00+00:00")) == []
    done = p.review_tiers(at("2026-12-08T00:00:00+00:00"))
    assert [(ref, c.kind.value, c.from_tier, c.to_tier) for ref, c in done] == [
        ("M", "assignment_expired", "gold", "silver")
    ]
    assert rows(p, "M")[-1] == (
        "2026-12-07T10:00:00+00:00", "assignment_expired", "gold", "silver",
        Decimal("0.0000"), "manual assignment ended; spend 0; silver as without it, "
        "grace until 2027-02-01",
    )  # fmt: skip
    grace = at("2027-02-01T09:00:00+00:00")
    assert p.tier_standing("M") == TierState(
        "silver", at("2025-11-01T09:00:00+00:00"), at("2026-11-01T09:00:00+00:00"), grace
    )
    assert p.tier_standing("M") == p.tier_standing("MB")
    assert p.review_tiers(at("2026-12-08T00:00:00+00:00")) == []  # nothing twice
    assert p.tier_standing("M") == p.tier_standing("MB")
    done = p.review_tiers(at("2027-02-02T00:00:00+00:00"))
    assert [(ref, c.at, c.kind.value, c.to_tier) for ref, c in done] == [
        ("M", grace, "downgrade", "bronze"),
        ("MB", grace, "downgrade", "bronze"),
    ]


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_missed_downgrade_is_one_level_after_the_assignment(pdb: Database, batch: bool) -> None:
    """Gold since 2025-01-10, no grace, one_level; gold by hand from 2025-12-01 to
    2026-02-01 over the re-qualification of 2026-01-10 (spend 0): at the end silver, as
    that re-qualification would have left them (since it, next one 2027-01-10), not
    bronze. A purchase after the end (single path or import batch) applies the end
    first, as the daily job does, and earns with silver's x1.5."""
    p = EventProcessor(pdb, parse_program(NO_GRACE))
    p.process(buy("g1", "G", "1000", "2025-01-10T10:00:00+01:00"))
    p.assign_tier("G", "gold", at=at("2025-12-01T10:00:00+01:00"),
                  until=at("2026-02-01T10:00:00+01:00"), reason="extension")  # fmt: skip
    send(p, [buy("g2", "G", "100", "2026-02-02T10:00:00+01:00")], batch=batch)
    assert rows(p, "G")[-1] == (
        "2026-02-01T09:00:00+00:00", "assignment_expired", "gold", "silver",
        Decimal("0.0000"), "manual assignment ended; spend 0; silver as without it",
    )  # fmt: skip
    assert p.tier_standing("G") == TierState(
        "silver", at("2026-01-10T09:00:00+00:00"), at("2027-01-10T09:00:00+00:00")
    )
    assert p.ledger.balance("pa", "G", "points").available == 1000 + 150
    assert p.review_tiers(at("2026-03-01T00:00:00+00:00")) == []


def test_a_value_that_qualifies_higher_still_decides_at_the_end(pdb: Database) -> None:
    """Without the assignment the member would be bronze; their spend qualifies for
    silver at its end: silver from the end, next re-qualification a year after it (as
    before)."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.process(buy("s1", "S", "100", "2026-01-10T10:00:00+01:00"))
    p.assign_tier("S", "gold", at=at("2026-02-01T10:00:00+01:00"),
                  until=at("2026-03-01T10:00:00+01:00"), reason="trial")  # fmt: skip
    p.process(buy("s2", "S", "250", "2026-02-10T10:00:00+01:00"))
    p.review_tiers(at("2026-03-02T00:00:00+00:00"))
    assert rows(p, "S")[-1] == (
        "2026-03-01T09:00:00+00:00", "assignment_expired", "gold", "silver",
        Decimal("350.0000"), "manual assignment ended; spend 350 qualifies for silver",
    )  # fmt: skip
    assert p.tier_standing("S") == TierState(
        "silver", at("2026-03-01T09:00:00+00:00"), at("2027-03-01T09:00:00+00:00")
    )
