"""A refund judges the level its purchase unlocked by the threshold the upgrade reached
(recorded in the upgrade's reason), not by a threshold raised in the program file
since: a member who keeps what reached the old threshold keeps the level, as members
with the same spend and no refund do; below it, the reversal names that threshold.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fidelite.engine import Event
from fidelite.processing import EventProcessor, Result
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
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
    - {id: gold, name: Gold, threshold: 1000}
"""

RAISED = PROGRAM.replace("threshold: 1000}", "threshold: 2000}")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def rows(p: EventProcessor, member: str) -> list[tuple[Any, ...]]:
    return [
        (r["kind"], r["from_tier"], r["to_tier"], r["value"], r["reason"], r["event_id"])
        for r in p.tier_timeline(member)
    ]


GOLD = ("upgrade", "bronze", "gold", Decimal("1100.0000"), "spend 1100 reached 1000")


def raised(pdb: Database) -> EventProcessor:
    """dan and eve buy 1100 (gold at 1000); then gold's threshold is raised to 2000."""
    old = EventProcessor(pdb, parse_program(PROGRAM))
    for member in ("dan", "eve"):
        old.process(Event(id=f"{member}-1", type="purchase", member=member,
                          at=at("2026-01-10T10:00:00+01:00"), amount=Decimal("1100")))  # fmt: skip
    return EventProcessor(pdb, parse_program(RAISED))


def refund(p: EventProcessor, amount: str) -> Result:
    answer = p.process(Event(id="dan-r", type="refund", member="dan",
                             at=at("2026-02-01T10:00:00+01:00"), amount=Decimal(amount),
                             refund_of="dan-1"))  # fmt: skip
    assert isinstance(answer, Result)
    return answer


def test_a_refund_keeping_the_threshold_reached_keeps_the_level(pdb: Database) -> None:
    p = raised(pdb)
    answer = refund(p, "50")
    assert answer.tier_changes == []
    assert rows(p, "dan") == [(*GOLD, "dan-1")]
    assert p.member_tier("dan") == p.member_tier("eve") == "gold"
    standing = p.tier_standing("dan")
    assert standing is not None
    assert (standing.since, standing.review_at) == (
        at("2026-01-10T10:00:00+01:00"), at("2027-01-10T10:00:00+01:00"))  # fmt: skip


def test_a_refund_below_the_threshold_reached_reverses_the_upgrade(pdb: Database) -> None:
    p = raised(pdb)
    refund(p, "200")
    assert rows(p, "dan") == [
        (*GOLD, "dan-1"),
        ("upgrade_reversed", "gold", "silver", Decimal("900.0000"),
         "refund: spend 900 no longer reaches 1000", "dan-r"),
    ]  # fmt: skip


def test_the_threshold_is_read_from_the_entrys_reason() -> None:
    from fidelite.engine.tiers import recorded_threshold

    assert recorded_threshold("spend 1100 reached 1000", "spend") == Decimal("1000")
    assert recorded_threshold("points 1200 meets 300.5", "points") == Decimal("300.5")
    assert recorded_threshold("refund: spend 1100 reaches 1000 from 2026-01-10", "spend") == (
        Decimal("1000")
    )
    assert recorded_threshold("refund: on 2026-03-01, spend 500 reached 300", "spend") == (
        Decimal("300")
    )
    assert (
        recorded_threshold("manual assignment ended; spend 7 qualifies for gold", "spend") is None
    )
    # a threshold of another metric is none of the program's now
    assert recorded_threshold("spend 1100 reached 1000", "points") is None
    assert recorded_threshold("purchases 5 meets 5", "spend") is None


def test_a_threshold_of_the_metric_before_is_not_used(pdb: Database) -> None:
    """The file changes the metric from spend to points (gold at 2000 points): dan's
    recorded 'spend 1100 reached 1000' is no points threshold, so a refund judges him by
    the file's 2000 points (1050 points left after a 50 refund: silver at 300)."""
    old = EventProcessor(pdb, parse_program(PROGRAM))
    old.process(Event(id="dan-1", type="purchase", member="dan",
                      at=at("2026-01-10T10:00:00+01:00"), amount=Decimal("1100")))  # fmt: skip
    points = PROGRAM.replace("metric: spend", "metric: points").replace(
        "threshold: 1000}", "threshold: 2000}"
    )
    refund(EventProcessor(pdb, parse_program(points)), "50")
    kept = rows(EventProcessor(pdb, parse_program(points)), "dan")
    assert kept[0] == (*GOLD, "dan-1")
    assert [(r[0], r[1], r[2], r[4]) for r in kept[1:]] == [
        ("upgrade_reversed", "gold", "silver", "refund: points 1050 no longer reaches 2000"),
    ]
