"""A purchase dated before tier steps already on the member's timeline (older history
imported after the daily job ran), on the single path and the import's batch path: the
member's level and dates are those the purchases in date order give. The timeline is
only added to: the steps the history in date order takes that it lacks are written at
their own dates with the late purchase's id, after the entries they supersede."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
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
    - {id: silver, name: Silver, threshold: 300}
    - {id: gold, name: Gold, threshold: 1000}
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def buy(event_id: str, member: str, amount: str, when: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at(when),
                 amount=Decimal(amount))  # fmt: skip


def send(p: EventProcessor, event: Event, batch: bool) -> None:
    if batch:
        with p.db.write() as conn:
            process_events(p, conn, [event])
    else:
        p.process(event)


def standing(p: EventProcessor, member: str) -> tuple[Any, ...]:
    s = p.tier_standing(member)
    assert s is not None
    dates = (None if d is None else d.astimezone().isoformat()[:19]
             for d in (s.since, s.review_at, s.grace_until))  # fmt: skip
    return (*dates, s.tier)


def timeline(p: EventProcessor, member: str) -> list[tuple[Any, ...]]:
    return [(r["at"].astimezone().isoformat()[:19], r["kind"], r["from_tier"], r["to_tier"],
             r["value"], r["event_id"]) for r in p.tier_timeline(member)]  # fmt: skip


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_late_purchase_does_not_end_a_grace_period_that_began_after_it(
    pdb: Database, batch: bool
) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    for member in ("late", "inorder"):
        send(p, buy(f"{member}1", member, "350", "2024-03-01T10:00:00+01:00"), batch)
    send(p, buy("inorder2", "inorder", "300", "2025-02-15T10:00:00+01:00"), batch)
    p.review_tiers(at("2025-06-01T00:00:00+02:00"))
    send(p, buy("late2", "late", "300", "2025-02-15T10:00:00+01:00"), batch)
    p.review_tiers(at("2026-12-01T00:00:00+01:00"))
    # silver kept at the 2025-03-01 review (300 in the window), then grace and downgrade
    # a year on: as in date order (it was requalified on 2025-02-15, downgraded 2026-05-15)
    assert standing(p, "late") == standing(p, "inorder") == (
        "2026-06-01T08:00:00", None, None, "bronze")  # fmt: skip
    assert timeline(p, "late") == [
        ("2024-03-01T09:00:00", "upgrade", "bronze", "silver", Decimal("350.0000"), "late1"),
        # the job's grace period, superseded by the late purchase's re-qualification
        ("2025-03-01T09:00:00", "grace_started", "silver", "silver", Decimal(0), None),
        ("2025-03-01T09:00:00", "requalified", "silver", "silver", Decimal(300), "late2"),
        ("2026-03-01T09:00:00", "grace_started", "silver", "silver", Decimal(0), None),
        ("2026-06-01T08:00:00", "downgrade", "silver", "bronze", Decimal(0), None),
    ]
    assert [t[:5] for t in timeline(p, "inorder")] == [
        t[:5] for i, t in enumerate(timeline(p, "late")) if i != 1
    ]


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_late_purchase_before_a_downgrade_keeps_the_level(pdb: Database, batch: bool) -> None:
    """Silver from 2024-03-01; the job downgraded the member at the end of the grace
    period (2025-06-01). A purchase of 300 dated 2025-04-01 arrives: in date order it
    ended the grace period then (requalified on 2025-04-01, next review 2026-04-01)."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    send(p, buy("a1", "a", "350", "2024-03-01T10:00:00+01:00"), batch)
    p.review_tiers(at("2025-07-01T00:00:00+02:00"))
    assert standing(p, "a") == ("2025-06-01T08:00:00", None, None, "bronze")
    send(p, buy("a2", "a", "300", "2025-04-01T10:00:00+02:00"), batch)
    assert standing(p, "a") == (
        "2024-03-01T09:00:00", "2026-04-01T08:00:00", None, "silver")  # fmt: skip
    assert timeline(p, "a")[-1] == (
        "2025-04-01T08:00:00", "requalified", "silver", "silver", Decimal(300), "a2")  # fmt: skip
