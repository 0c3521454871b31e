"""A manual assignment records the member's qualifying value when it is made, with the
four places every timeline entry has, and keeps its end on the timeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_tier_refund_since import PROGRAM


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+01:00")


def test_an_assignment_records_the_value_the_member_had(pdb: Database) -> None:
    """The QA walk-through: 250 spent, 100 more refunded: 250 when assigned, not 0."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=day("2026-01-10"))
    p.process(Event(id="a1", type="purchase", member="ann", at=day("2026-11-02"),
                    amount=Decimal("250")))  # fmt: skip
    change = p.assign_tier("ann", "silver", at=day("2026-12-06"), until=day("2027-03-01"),
                           reason="x")  # fmt: skip
    assert (change.kind.value, str(change.value)) == ("assigned", "250.0000")
    rows = p.tier_timeline("ann")
    assert [(r["kind"], str(r["value"]), r["assigned_until"]) for r in rows] == [
        ("assigned", "250.0000", day("2027-03-01"))
    ]
