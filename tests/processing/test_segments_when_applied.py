"""Offers and coupon campaigns use the member's segments as stored when the event is
applied, not as they were at the event's time (docs/program.md, Earning rules step 4):
Sunday's sales imported after Monday's CRM refresh are judged with Monday's segments.
Real databases (SQLite file, then PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.processing.processor import MemberProfile
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
  - {id: vip_offer, on: [purchase], segments: [vip], fixed: 50}
"""
SUNDAY = datetime.fromisoformat("2026-10-25T11:00:00+01:00")


def test_sunday_sales_applied_after_monday_refresh_use_mondays_segments(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=SUNDAY, profile=MemberProfile(segments=["vip"]))  # vip on Sunday
    p.enrol("bob", at=SUNDAY, profile=MemberProfile(segments=[]))
    p.update_profile("ann", MemberProfile(segments=[]))  # Monday's CRM refresh
    p.update_profile("bob", MemberProfile(segments=["vip"]))
    got = {}
    for member in ("ann", "bob"):
        result = p.process(Event(id=f"p-{member}", type="purchase", member=member,
                                 at=SUNDAY, amount=Decimal(4)))  # fmt: skip
        assert result.decision is not None
        got[member] = result.decision.points("points")
    assert got == {"ann": 4, "bob": 54}
