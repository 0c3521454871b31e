"""Tier windows of a batch whose events fall in the repeated hour of a fall-back night.

Window starts follow local time, which goes back when the clocks do: an event at
02:50+02:00 comes before one at 02:10+01:00 but its window starts later (02:50 a year
earlier, against 02:10). A purchase between those two starts is in the later event's
window only, whatever the chunking of the import.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.engine.calendar import local_bounds
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events, process_one
from fidelite.processing.tables import member_states, tier_changes
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: {pid}
name: Repeated hour
time_zone: Europe/Paris
currencies: [{{id: points, name: Points, value: 0.01}}]
rules:
  - {{id: base, on: [purchase], per_amount: {{points: 1}}}}
tiers:
  metric: spend
  window: rolling
  window_months: 12
  levels:
    - {{id: bronze, name: Bronze, threshold: 0}}
    - {{id: silver, name: Silver, threshold: 300}}
"""
PARIS = ZoneInfo("Europe/Paris")


def purchase(event_id: str, at: str, amount: int) -> Event:
    return Event(id=event_id, type="purchase", member="x", at=datetime.fromisoformat(at),
                 amount=Decimal(amount))  # fmt: skip


# p0 at 02:30 a year before the repeated hour: inside the window of 02:10+01:00 (which
# starts at 02:10+01:00 a year earlier), not of 02:50+02:00 (which starts at 02:50).
EARLIER = [purchase("p0", "2024-10-26T02:30:00+02:00", 250),
           purchase("p1", "2025-01-15T10:00:00+01:00", 49)]  # fmt: skip
FOLD = [purchase("e", "2025-10-26T02:50:00+02:00", 1),  # 00:50Z
        purchase("l", "2025-10-26T02:10:00+01:00", 1)]  # 01:10Z, after e  # fmt: skip


def tiers_of(db: Database, pid: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with db.read() as conn:
        changes = conn.execute(
            select(tier_changes.c.event_id, tier_changes.c.kind, tier_changes.c.from_tier,
                   tier_changes.c.to_tier, tier_changes.c.reason, tier_changes.c.at)
            .where(tier_changes.c.program_id == pid)
            .order_by(tier_changes.c.at)
        ).all()  # fmt: skip
        states = conn.execute(
            select(member_states.c.member_ref, member_states.c.tier, member_states.c.tier_since)
            .where(member_states.c.program_id == pid)
        ).all()  # fmt: skip
    return [tuple(r) for r in changes], [tuple(r) for r in states]


def utc(at: object) -> object:
    return at.astimezone(UTC) if isinstance(at, datetime) and at.tzinfo else at


@pytest.mark.parametrize("chunks", [[FOLD], [FOLD[:1], FOLD[1:]]], ids=["one", "each"])
def test_a_purchase_between_two_window_starts_of_the_repeated_hour_counts_for_the_later_event(
    pdb: Database, chunks: list[list[Event]]
) -> None:
    single = EventProcessor(pdb, parse_program(PROGRAM.format(pid="single")))
    batched = EventProcessor(pdb, parse_program(PROGRAM.format(pid="batched")))
    with pdb.write() as conn:
        for event in [*EARLIER, *FOLD]:
            process_one(single, conn, event)
    with pdb.write() as conn:
        process_events(batched, conn, EARLIER)
    for chunk in chunks:
        with pdb.write() as conn:
            process_events(batched, conn, chunk)

    # e counts p1 and itself (50); l counts p0 too (301): silver at l, not at e.
    expected = [("l", "upgrade", "bronze", "silver", "spend 301 reached 300")]
    for pid in ("single", "batched"):
        changes, states = tiers_of(pdb, pid)
        assert [c[:5] for c in changes] == expected
        assert [utc(c[5]) for c in changes] == [datetime(2025, 10, 26, 1, 10, tzinfo=UTC)]
        assert [(s[0], s[1], utc(s[2])) for s in states] == [
            ("x", "silver", datetime(2025, 10, 26, 1, 10, tzinfo=UTC))
        ]


def test_local_bounds_reach_the_highest_and_lowest_local_time_of_a_fall_back_night() -> None:
    early = datetime(2025, 10, 26, 0, 50, tzinfo=UTC)  # 02:50+02:00
    late = datetime(2025, 10, 26, 1, 10, tzinfo=UTC)  # 02:10+01:00
    low, high = local_bounds(early, late, PARIS)
    assert low == datetime(2025, 10, 25, 23, 50, tzinfo=UTC)  # 01:50+02:00, before 02:10
    assert high == datetime(2025, 10, 26, 2, 10, tzinfo=UTC)  # 03:10+01:00, after 02:50
    # No change of offset within a day: the bounds are the instants themselves.
    quiet = datetime(2025, 11, 20, 9, tzinfo=UTC), datetime(2025, 12, 20, 9, tzinfo=UTC)
    assert local_bounds(*quiet, PARIS) == quiet
    # Spring forward: local time only jumps ahead.
    spring = datetime(2025, 3, 30, 0, 30, tzinfo=UTC), datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert local_bounds(*spring, PARIS) == spring
