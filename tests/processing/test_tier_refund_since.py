"""The dates a refund leaves when it undoes an upgrade: those of the level held before.

The member goes back to that level with its own dates, never the undone upgrade's: the
base level they never left dates from their enrolment, a level a downgrade (after its
grace period) gave them from that downgrade, the end of a manual assignment from that
end. Every reading of the member (standing, profile, timeline) agrees.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from fidelite.engine import Event
from fidelite.engine.tiers import TierState
from fidelite.processing import EventProcessor
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
  window_months: 12
  requalify_months: 12
  grace_months: 3
  downgrade: one_level
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
    - {id: gold, name: Gold, threshold: 1000}
"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+01:00")


def paris(text: str) -> datetime:
    """10:00 local time: a date reached by adding months keeps the hour, in summer too."""
    return datetime.fromisoformat(f"{text}T10:00:00").replace(tzinfo=ZoneInfo("Europe/Paris"))


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


def since_everywhere(p: EventProcessor) -> tuple[datetime | None, datetime | None]:
    """The level's date as the tier standing and the member's profile read it."""
    standing, profile = p.tier_standing("ann"), p.member_profile("ann")
    assert standing is not None and profile is not None
    return standing.since, profile["tier_since"]


def test_an_undone_upgrade_leaves_the_base_level_dated_from_the_enrolment(pdb: Database) -> None:
    """The QA walk-through: joined on 10 January, silver by a2 on 20 November, a2
    refunded on 6 December: bronze since 10 January, not since 20 November."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=day("2026-01-10"))
    buy(p, "a1", "250", "2026-11-02")
    buy(p, "a2", "100", "2026-11-20")
    refund(p, "r1", "a2", "100", "2026-12-06")
    assert timeline(p) == [
        ("2026-11-20", "upgrade", "bronze", "silver", Decimal(350),
         "spend 350 reached 300", "a2"),
        ("2026-12-06", "upgrade_reversed", "silver", "bronze", Decimal(250),
         "refund: spend 250 no longer reaches 300", "r1"),
    ]  # fmt: skip
    assert p.tier_standing("ann") == TierState("bronze", day("2026-01-10"))
    assert since_everywhere(p) == (day("2026-01-10"), day("2026-01-10"))


def test_an_undone_upgrade_after_a_downgrade_keeps_the_downgrade_date(pdb: Database) -> None:
    """Silver from 10 January 2026, not re-qualified on 10 January 2027: grace until
    10 April, then bronze. Silver again by p2 on 1 May, refunded on 10 May: bronze from
    the downgrade of 10 April (not the enrolment, nor p2's upgrade)."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=day("2026-01-01"))
    buy(p, "p1", "400", "2026-01-10")
    p.review_tiers(day("2027-04-10"))
    buy(p, "p2", "300", "2027-05-01")
    refund(p, "r2", "p2", "300", "2027-05-10")
    assert timeline(p) == [
        ("2026-01-10", "upgrade", "bronze", "silver", Decimal(400),
         "spend 400 reached 300", "p1"),
        ("2027-01-10", "grace_started", "silver", "silver", Decimal(0),
         "spend 0 below 300; grace until 2027-04-10", None),
        ("2027-04-10", "downgrade", "silver", "bronze", Decimal(0),
         "spend 0 below 300 at re-qualification", None),
        ("2027-05-01", "upgrade", "bronze", "silver", Decimal(300),
         "spend 300 reached 300", "p2"),
        ("2027-05-10", "upgrade_reversed", "silver", "bronze", Decimal(0),
         "refund: spend 0 no longer reaches 300", "r2"),
    ]  # fmt: skip
    assert p.tier_standing("ann") == TierState("bronze", paris("2027-04-10"))
    assert since_everywhere(p) == (paris("2027-04-10"), paris("2027-04-10"))


def test_an_undone_upgrade_during_a_grace_period_keeps_its_dates(pdb: Database) -> None:
    """Silver from 10 January 2026 in a grace period from 10 January 2027 to 10 April;
    gold by p2 on 1 February, refunded on 15 February: silver from 10 January 2026,
    with its re-qualification date and the grace period's end."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=day("2026-01-01"))
    buy(p, "p1", "400", "2026-01-10")
    p.review_tiers(day("2027-01-10"))
    buy(p, "p2", "1000", "2027-02-01")
    refund(p, "r2", "p2", "1000", "2027-02-15")
    assert timeline(p)[-2:] == [
        ("2027-02-01", "upgrade", "silver", "gold", Decimal(1000),
         "spend 1000 reached 1000", "p2"),
        ("2027-02-15", "upgrade_reversed", "gold", "silver", Decimal(0),
         "refund: spend 0 no longer reaches 1000", "r2"),
    ]  # fmt: skip
    assert p.tier_standing("ann") == TierState(
        "silver", day("2026-01-10"), day("2027-01-10"), paris("2027-04-10")
    )
    assert since_everywhere(p) == (day("2026-01-10"), day("2026-01-10"))


def test_an_undone_upgrade_after_an_assignment_ended_keeps_its_end(pdb: Database) -> None:
    """Silver by hand from 1 February to 1 March (bronze at its end: 100 spent), silver
    again by p2 on 1 April, refunded on 5 April: bronze from the assignment's end."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=day("2026-01-01"))
    buy(p, "p1", "100", "2026-01-10")
    p.assign_tier("ann", "silver", at=day("2026-02-01"), until=day("2026-03-01"), reason="vip")
    p.review_tiers(day("2026-03-01"))
    buy(p, "p2", "250", "2026-04-01")
    refund(p, "r2", "p2", "250", "2026-04-05")
    assert [row[:4] + row[6:] for row in timeline(p)] == [
        ("2026-02-01", "assigned", "bronze", "silver", None),
        ("2026-03-01", "assignment_expired", "silver", "bronze", None),
        ("2026-04-01", "upgrade", "bronze", "silver", "p2"),
        ("2026-04-05", "upgrade_reversed", "silver", "bronze", "r2"),
    ]
    assert p.tier_standing("ann") == TierState("bronze", day("2026-03-01"))
    assert since_everywhere(p) == (day("2026-03-01"), day("2026-03-01"))
