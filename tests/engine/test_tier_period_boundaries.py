"""Which tier window an activity at the very instant of a period boundary or a step
belongs to (docs/program.md, Tiers).

An event at midnight on 1 January counts in the calendar year it opens, not in the
year that just closed; the review at that midnight judges the closed year only. A
re-qualification step due at an instant judges the window just before it, and an
activity at that instant comes after it: the daily job run late over such an
activity writes what the member's event wrote when it arrived.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from fidelite.engine import Event
from fidelite.engine.tiers import (
    Activity,
    TierChange,
    TierState,
    _values_after,
    on_activity,
    review,
    window_value,
)
from fidelite.processing import EventProcessor, Result
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.program.tier import TierPolicy
from fidelite.store import Database

PARIS = ZoneInfo("Europe/Paris")
LEVELS = [{"id": "bronze", "name": "Bronze", "threshold": 0},
          {"id": "silver", "name": "Silver", "threshold": 300}]  # fmt: skip
YEARLY = TierPolicy.model_validate({"metric": "spend", "window": "calendar_year",
                                    "grace_months": 0, "downgrade": "to_qualified",
                                    "levels": LEVELS})  # fmt: skip
ROLLING = TierPolicy.model_validate({"metric": "spend", "window": "rolling",
                                     "window_months": 12, "requalify_months": 12,
                                     "grace_months": 0, "downgrade": "one_level",
                                     "levels": LEVELS})  # fmt: skip
NEW_YEAR = datetime.fromisoformat("2026-01-01T00:00:00+01:00")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def bought(when: str, amount: str) -> Activity:
    return Activity(at(when), spend=Decimal(amount), purchases=1)


def entries(changes: list[TierChange]) -> list[tuple[str, str, str, str, Decimal, str]]:
    return [(c.at.astimezone(PARIS).isoformat(), c.kind.value, c.from_tier, c.to_tier,
             c.value, c.reason) for c in changes]  # fmt: skip


def test_a_purchase_at_new_year_midnight_counts_in_the_year_it_opens() -> None:
    """QA repro (s4): 200 in June 2025, then 150 at 2026-01-01T00:00 local. The 150's
    window is 2026 alone: 150, no upgrade (it was `spend 350 reached 300`, the closed
    year counted with it); the one-pass values agree."""
    activities = [bought("2025-06-01T12:00:00+02:00", "200"), Activity(NEW_YEAR, Decimal(150))]
    state = TierState("bronze", at("2025-01-01T00:00:00+01:00"))
    assert window_value(YEARLY, activities, NEW_YEAR, PARIS) == 150
    assert on_activity(YEARLY, state, activities, NEW_YEAR, PARIS) == (state, [])
    after = at("2025-12-31T00:00:00+01:00")
    assert _values_after(YEARLY, activities, after, NEW_YEAR, PARIS) == [(NEW_YEAR, 150)]


def test_the_new_year_review_judges_the_closed_year_only() -> None:
    """Silver from 2025 with 250 spent in 2025 and 100 at 2026-01-01T00:00: the review at
    that midnight judges 2025 alone (250 < 300: bronze; it was `spend 350 meets 300`),
    the purchase comes after it and is 2026's (100: no upgrade)."""
    activities = [bought("2025-02-01T10:00:00+01:00", "300"),
                  bought("2025-02-02T10:00:00+01:00", "-50"),
                  Activity(NEW_YEAR, Decimal(100), purchases=1)]  # fmt: skip
    state = TierState("silver", at("2025-02-01T10:00:00+01:00"), review_at=NEW_YEAR)
    new, changes = review(YEARLY, state, activities, at("2026-03-01T00:00:00+01:00"), PARIS)
    assert entries(changes) == [
        ("2026-01-01T00:00:00+01:00", "downgrade", "silver", "bronze", Decimal("250.0000"),
         "spend 250 below 300 at re-qualification"),
    ]  # fmt: skip
    assert new == TierState("bronze", NEW_YEAR)
    assert window_value(YEARLY, activities, NEW_YEAR, PARIS, step=True) == 250


@pytest.mark.parametrize("policy", [YEARLY, ROLLING], ids=["calendar-year", "rolling"])
def test_a_late_review_writes_what_the_event_at_the_step_wrote(policy: TierPolicy) -> None:
    """Silver on 400 bought 2025-01-10 10:00, review due 2026-01-10 10:00 (calendar
    year: on 400 bought in 2024, kept on 1 January 2025, review due 1 January 2026), and
    350 bought at that very instant. The event's path: the step first, judged without
    it (spend 0: bronze), then the purchase upgrades again. The daily job run later over
    the recorded purchase writes the same (it wrote `spend 350 meets 300`, counting the
    purchase in the step)."""
    yearly = policy is YEARLY
    due = NEW_YEAR if yearly else at("2026-01-10T10:00:00+01:00")
    first = bought("2024-01-10T10:00:00+01:00" if yearly else "2025-01-10T10:00:00+01:00", "400")
    state = TierState("silver", first.at, review_at=due)
    live, stepped = review(policy, state, [first], due, PARIS)
    then = [first, Activity(due, Decimal(350), purchases=1)]
    live, upgraded = on_activity(policy, live, then, due, PARIS)
    late, written = review(policy, state, then, at("2026-06-01T00:00:00+02:00"), PARIS)
    expected = [
        (due.isoformat(), "downgrade", "silver", "bronze", Decimal("0.0000"),
         "spend 0 below 300 at re-qualification"),
        (due.isoformat(), "upgrade", "bronze", "silver", Decimal("350.0000"),
         "spend 350 reached 300"),
    ]  # fmt: skip
    assert entries(stepped + upgraded) == expected
    assert entries(written) == expected
    assert late == live


# The QA report's s4 and s4m, through the processor, one event at a time and in a batch.
PROGRAM = """\
id: s4
name: S4
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
tiers:
  metric: spend
  window: calendar_year
  grace_months: 0
  downgrade: to_qualified
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300, earn_multiplier: 1.5}
"""


def buy(event_id: str, amount: str, when: str) -> Event:
    return Event(id=event_id, type="purchase", member="zoe", at=at(when), amount=Decimal(amount))


def points(p: EventProcessor) -> dict[str, int]:
    with p.db.read() as conn:
        found = conn.execute(
            text("SELECT event_id, sum(points) FROM event_earnings WHERE program_id = :p "
                 "GROUP BY event_id ORDER BY event_id"), {"p": p.program.id},
        ).all()  # fmt: skip
    return {event_id: int(total) for event_id, total in found}


def apply(p: EventProcessor, events: list[Event], batch: bool) -> list[Any]:
    if not batch:
        return [p.process(event) for event in events]
    with p.db.write() as conn:
        return process_events(p, conn, events)


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_new_year_midnight_purchase_earns_no_tier_bonus_after_it(db: Database, batch: bool) -> None:
    """200 in June 2025, 150 at 2026-01-01T00:00, 100 on 2026-02-01: the member stays
    bronze (2026's spend is 250), so the 100 earns 100 points, not silver's 150, and the
    timeline stays empty; the job finds nothing to do."""
    p = EventProcessor(db, parse_program(PROGRAM))
    assert p.enrol("zoe", at=at("2025-01-01T00:00:00+01:00"))
    apply(p, [buy("z1", "200", "2025-06-01T12:00:00+02:00")], batch)
    answers = apply(p, [buy("z2", "150", "2026-01-01T00:00:00+01:00"),
                        buy("z3", "100", "2026-02-01T12:00:00+01:00")], batch)  # fmt: skip
    assert all(isinstance(a, Result) and a.tier_changes == [] for a in answers)
    assert p.review_tiers(at("2026-12-07T00:00:00+01:00")) == []
    assert p.tier_timeline("zoe") == []
    assert points(p) == {"z1": 200, "z2": 150, "z3": 100}
    standing = p.tier_standing("zoe")
    assert standing is not None and standing.tier == "bronze"


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_new_year_review_due_at_a_purchase_keeps_the_level_on_the_closed_year(
    db: Database, batch: bool
) -> None:
    """400 in June 2025 (silver, review 2026-01-01); 150 at 2026-01-01T00:00 and 100 on
    2026-02-01 in one batch: the review due at the first of them judges 2025 (400: kept),
    then both earn silver's 1.5; the batch reads 2025 for that review, though neither
    event's own window reaches back there."""
    p = EventProcessor(db, parse_program(PROGRAM))
    assert p.enrol("zoe", at=at("2025-01-01T00:00:00+01:00"))
    apply(p, [buy("z1", "400", "2025-06-01T12:00:00+02:00")], batch)
    apply(p, [buy("z2", "150", "2026-01-01T00:00:00+01:00"),
              buy("z3", "100", "2026-02-01T12:00:00+01:00")], batch)  # fmt: skip
    assert [(r["at"].astimezone(PARIS).isoformat(), r["kind"], r["to_tier"], r["value"],
             r["reason"], r["event_id"]) for r in p.tier_timeline("zoe")] == [
        ("2025-06-01T12:00:00+02:00", "upgrade", "silver", Decimal("400.0000"),
         "spend 400 reached 300", "z1"),
        ("2026-01-01T00:00:00+01:00", "requalified", "silver", Decimal("400.0000"),
         "spend 400 meets 300", None),
    ]  # fmt: skip
    assert points(p) == {"z1": 400, "z2": 225, "z3": 150}
    standing = p.tier_standing("zoe")
    assert standing is not None
    assert (standing.tier, standing.review_at) == ("silver", at("2027-01-01T00:00:00+01:00"))
