"""Tier windows on the batch path: the same tier changes as one event at a time.

The batch path sums the events that lie inside every window of a batch and reads only
the edge events one by one; these files put purchases on both sides of the window edges
(a rolling 2-month window, a calendar year around New Year), with partial and full
refunds, amounts with four decimals, and other events that earn points (reviews) or not
(visits; their amounts are no spend), and compare the tier changes and member states of
a program fed one event at a time with those of a program fed in batches.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events, process_one
from fidelite.processing.tables import member_states, tier_changes
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: {pid}
name: Windows
time_zone: Europe/Paris
currencies: [{{id: points, name: Points, value: 0.01}}]
rules:
  - {{id: base, on: [purchase], per_amount: {{points: 1}}}}
  - {{id: review, on: [review], fixed: 40}}
events: [visit]
tiers:
  metric: {metric}
  window: {window}{months}
  levels:
    - {{id: bronze, name: Bronze, threshold: 0}}
    - {{id: silver, name: Silver, threshold: {silver}}}
    - {{id: gold, name: Gold, threshold: {gold}}}
"""
START = datetime(2026, 10, 20, 9, tzinfo=UTC)


def history(rng: random.Random) -> list[list[Event]]:
    """Four files of purchases and refunds over five months, crossing New Year."""
    files: list[list[Event]] = []
    made: list[tuple[str, str, Decimal]] = []
    n = 0
    for week in range(0, 20, 5):
        events: list[Event] = []
        for _ in range(60):
            n += 1
            member = f"m{rng.randrange(12)}"
            at = START + timedelta(weeks=week, hours=rng.randrange(5 * 7 * 24))
            draw = rng.random()
            if draw < 0.1:  # points without a purchase (the points metric counts them)
                events.append(Event(id=f"v{n}", type=rng.choice(["review", "visit"]),
                                    member=member, at=at, amount=Decimal(7)))  # fmt: skip
                continue
            if made and draw < 0.25:
                event_id, owner, amount = rng.choice(made)
                part = amount if rng.random() < 0.5 else (amount / 3).quantize(Decimal("0.0001"))
                events.append(Event(id=f"r{n}", type="refund", member=owner, at=at,
                                    amount=part, refund_of=event_id))  # fmt: skip
                continue
            amount = Decimal(rng.randrange(1, 90_000)) / 1000 + Decimal("0.0001")
            events.append(Event(id=f"p{n}", type="purchase", member=member, at=at,
                                amount=amount))  # fmt: skip
            made.append((f"p{n}", member, amount))
        files.append(events)
    return files


def tiers_of(db: Database, pid: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with db.read() as conn:
        changes = conn.execute(
            select(tier_changes.c.member_ref, tier_changes.c.event_id, tier_changes.c.kind,
                   tier_changes.c.from_tier, tier_changes.c.to_tier, tier_changes.c.reason)
            .where(tier_changes.c.program_id == pid)
            .order_by(tier_changes.c.member_ref, tier_changes.c.event_id)
        ).all()  # fmt: skip
        states = conn.execute(
            select(member_states.c.member_ref, member_states.c.tier, member_states.c.purchases)
            .where(member_states.c.program_id == pid)
            .order_by(member_states.c.member_ref)
        ).all()  # fmt: skip
    return [tuple(r) for r in changes], [tuple(r) for r in states]


@pytest.mark.parametrize(
    ("window", "metric", "silver", "gold"),
    [("rolling", "spend", 150, 400), ("calendar_year", "spend", 150, 400),
     ("rolling", "points", 150, 400), ("calendar_year", "purchases", 6, 12)],
)  # fmt: skip
def test_batch_path_gives_the_tier_changes_of_one_at_a_time(
    pdb: Database, window: str, metric: str, silver: int, gold: int
) -> None:
    files = history(random.Random(7))
    months = "\n  window_months: 2" if window == "rolling" else ""  # a calendar year has none
    fields = {"window": window, "metric": metric, "silver": silver, "gold": gold, "months": months}
    single = EventProcessor(pdb, parse_program(PROGRAM.format(pid="single", **fields)))
    batched = EventProcessor(pdb, parse_program(PROGRAM.format(pid="batched", **fields)))
    for events in files:
        with pdb.write() as conn:
            for event in events:
                process_one(single, conn, event)
        with pdb.write() as conn:
            process_events(batched, conn, events)

    single_changes, single_states = tiers_of(pdb, "single")
    assert len(single_changes) >= 5  # the files do move members between tiers
    assert tiers_of(pdb, "batched") == (single_changes, single_states)
