"""Tier movements recorded on the member's timeline by the processor."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fidelite.engine import Event
from fidelite.processing import EventProcessor, ProcessingError, Result
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
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  grace_months: 1
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
    - {id: gold, name: Gold, threshold: 500, earn_multiplier: 2}
"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+01:00")


def buy(p: EventProcessor, event_id: str, amount: str, when: str) -> None:
    p.process(
        Event(id=event_id, type="purchase", member="ann", at=day(when), amount=Decimal(amount))
    )


def timeline(p: EventProcessor) -> list[tuple[str, str, str, str]]:
    return [
        (r["at"].date().isoformat(), r["kind"], r["from_tier"], r["to_tier"])
        for r in p.tier_timeline("ann")
    ]


def test_tiers_move_up_at_once_and_down_after_grace(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    buy(p, "p1", "120", "2026-01-10")  # silver
    buy(p, "p2", "400", "2026-02-10")  # 520: gold, review 2027-02-10
    # Gold earns double: 30 points plus a tier bonus of 30 for the next purchase.
    buy(p, "p3", "30", "2026-03-01")
    balance = p.ledger.balance("shop", "ann", "points", as_of=day("2026-03-02"))
    assert balance.available == 120 + 400 + 30 + 30
    assert p.review_tiers(day("2027-02-09")) == []
    # Window (2026-02-10, 2027-02-10]: only the 30 of p3: grace, then one level down.
    changes = p.review_tiers(day("2027-03-10"))
    assert [(ref, c.kind.value, c.to_tier) for ref, c in changes] == [
        ("ann", "grace_started", "gold"),
        ("ann", "downgrade", "silver"),
    ]
    assert p.review_tiers(day("2027-03-10")) == []  # re-running changes nothing
    assert p.member_tier("ann") == "silver"
    assert timeline(p) == [
        ("2026-01-10", "upgrade", "bronze", "silver"),
        ("2026-02-10", "upgrade", "silver", "gold"),
        ("2027-02-10", "grace_started", "gold", "gold"),
        ("2027-03-10", "downgrade", "gold", "silver"),
    ]


def test_assign_tier_by_hand_until_a_date(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=day("2025-12-01"))
    change = p.assign_tier("ann", "gold", at=day("2026-01-01"), until=day("2026-02-01"),
                           reason="service outage goodwill")  # fmt: skip
    assert (change.kind.value, change.to_tier, change.reason) == (
        "assigned",
        "gold",
        "service outage goodwill",
    )
    p.review_tiers(day("2026-02-01"))
    assert p.member_tier("ann") == "bronze"
    assert timeline(p)[-1] == ("2026-02-01", "assignment_expired", "gold", "bronze")


POINTS_PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: welcome, on: [signup], fixed: 500}
  - {id: class, on: [workshop], fixed: 600}
  - {id: tip, on: [tip], fixed: 60}
events: [visit]
tiers:
  metric: points
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
    - {id: gold, name: Gold, threshold: 1000}
"""


def points_events() -> list[Event]:
    """A sign-up (500 points), a purchase (5), a visit (no points), a workshop (600), and
    the refund of a 400 EUR purchase made after it."""

    def ev(event_id: str, kind: str, when: str, **extra: object) -> Event:
        return Event.model_validate({"id": event_id, "type": kind, "member": "ann",
                                     "at": day(when), **extra})  # fmt: skip

    return [
        ev("s1", "signup", "2026-01-05"),
        ev("p1", "purchase", "2026-01-06", amount="5"),
        ev("v1", "visit", "2026-01-07"),
        ev("w1", "workshop", "2026-01-08"),
        ev("p2", "purchase", "2026-01-09", amount="400"),
        ev("r2", "refund", "2026-01-10", amount="400", refund_of="p2"),
    ]


def full_timeline(p: EventProcessor) -> list[tuple[str, str, str, str, Decimal, str | None]]:
    return [
        (r["at"].date().isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["event_id"])
        for r in p.tier_timeline("ann")
    ]  # fmt: skip


# Points from every earning event qualify (SPEC: "according to spend, points or
# engagement"), not only purchase points; refunds take theirs back.
POINTS_TIMELINE = [
    ("2026-01-05", "upgrade", "bronze", "silver", Decimal(500), "s1"),
    ("2026-01-08", "upgrade", "silver", "gold", Decimal(1105), "w1"),
]


def test_points_from_every_earning_event_qualify_on_the_single_path(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(POINTS_PROGRAM))
    events = points_events()
    for event in events[:2]:
        p.process(event)
    assert p.member_tier("ann") == "silver"  # 505 points, 500 of them from the sign-up
    for event in events[2:]:
        p.process(event)
    assert full_timeline(p) == POINTS_TIMELINE  # p2 (gold already) and its refund: no change
    assert p.ledger.balance("shop", "ann", "points", as_of=day("2026-01-11")).available == 1105


def test_points_from_every_earning_event_qualify_on_the_batch_path(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(POINTS_PROGRAM))
    with pdb.write() as conn:
        answers = process_events(p, conn, points_events())
    assert [a.outcome for a in answers if isinstance(a, Result)] == ["processed"] * 6
    assert full_timeline(p) == POINTS_TIMELINE
    assert p.member_tier("ann") == "gold"


def test_a_refund_takes_back_points_that_unlocked_a_tier(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(POINTS_PROGRAM))
    ann = {"member": "ann"}
    with pdb.write() as conn:
        process_events(p, conn, [
            points_events()[0],
            Event(id="p2", type="purchase", at=day("2026-01-09"), amount=Decimal(600), **ann),
            Event(id="r2", type="refund", at=day("2026-01-10"), amount=Decimal(600),
                  refund_of="p2", **ann),
            Event(id="t1", type="tip", at=day("2026-06-01"), **ann),
            Event(id="t2", type="tip", at=day("2026-07-01"), **ann),
        ])  # fmt: skip
    assert full_timeline(p) == [
        ("2026-01-05", "upgrade", "bronze", "silver", Decimal(500), "s1"),
        ("2026-01-09", "upgrade", "silver", "gold", Decimal(1100), "p2"),
        ("2026-01-10", "upgrade_reversed", "gold", "silver", Decimal(500), "r2"),
    ]
    # Re-qualification a year after 2026-01-09: the sign-up has left the window, the
    # two tips (60 points each) keep silver.
    changes = p.review_tiers(day("2027-01-10"))
    assert [(c.kind.value, c.from_tier, c.to_tier, c.value) for _, c in changes] == [
        ("requalified", "silver", "silver", Decimal(120)),
    ]


@pytest.mark.parametrize(
    ("member", "tier", "until", "reason", "code"),
    [
        ("bob", "gold", "2026-02-01", "goodwill", "unknown_member"),
        ("ann", "platinum", "2026-02-01", "goodwill", "unknown_tier"),
        ("ann", "gold", "2026-01-01", "goodwill", "invalid_assignment"),
        ("ann", "gold", "2026-02-01", "  ", "invalid_assignment"),
    ],
)
def test_assign_tier_refused_changes_nothing(
    pdb: Database, member: str, tier: str, until: str, reason: str, code: str
) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("ann", at=day("2025-12-01"))
    with pytest.raises(ProcessingError) as refused:
        p.assign_tier(member, tier, at=day("2026-01-01"), until=day(until), reason=reason)
    assert refused.value.code == code
    assert (p.member_tier("ann"), p.member_tier("bob"), timeline(p)) == ("bronze", None, [])


def test_review_tiers_applies_each_due_step_once(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    for ref in ("ann", "bob", "cat"):
        p.enrol(ref, at=day("2025-12-01"))
    buy(p, "p1", "120", "2026-01-10")  # ann: silver, review 2027-01-10
    p.assign_tier("bob", "gold", at=day("2026-01-01"), until=day("2026-03-01"), reason="vip")
    seen: list[tuple[int, int]] = []
    changes = p.review_tiers(
        day("2026-03-01"), progress=lambda done, total: seen.append((done, total))
    )
    assert [(ref, c.kind.value, c.to_tier) for ref, c in changes] == [
        ("bob", "assignment_expired", "bronze")
    ]
    assert seen == [(1, 1)]  # only bob was due
    assert p.review_tiers(day("2026-03-01")) == []
    standing = p.tier_standing("ann")
    assert standing is not None
    assert (standing.tier, standing.review_at) == ("silver", day("2027-01-10"))
    assert p.tier_standing("nobody") is None


def test_assign_tier_to_a_member_enrolled_in_the_ledger_only(pdb: Database) -> None:
    # e.g. enrolled with `fidelite member add`: the program state is created on the way
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.ledger.create_member("shop", "dan")
    p.assign_tier("dan", "silver", at=day("2026-01-01"), until=day("2026-02-01"), reason="vip")
    assert [(r["kind"], r["from_tier"], r["to_tier"]) for r in p.tier_timeline("dan")] == [
        ("assigned", "bronze", "silver")
    ]


@pytest.mark.parametrize("one_at_a_time", [True, False])
def test_events_dated_at_the_calendars_ends_move_tiers_without_failing(
    pdb: Database, one_at_a_time: bool
) -> None:
    # A re-qualification after 9999 cannot be dated (none is set). The API must answer
    # such events, not fail them (processed at the calendar's end, so that none of them
    # is in the future); the earliest time accepted (1970) is a start like any other.
    p = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: datetime.max.replace(tzinfo=UTC))
    first = Event(id="p1", type="purchase", member="ann", amount=Decimal(120),
                  at=datetime(1970, 1, 1, 12, tzinfo=UTC))  # fmt: skip
    last = Event(id="p2", type="purchase", member="bob", amount=Decimal(600),
                 at=datetime(9999, 12, 30, 12, tzinfo=UTC))  # fmt: skip
    if one_at_a_time:
        answers: list[object] = [p.process(first), p.process(last)]
    else:
        with pdb.write() as conn:
            answers = list(process_events(p, conn, [first, last]))
    assert [a.outcome for a in answers if isinstance(a, Result)] == ["processed"] * 2
    ann, bob = p.tier_standing("ann"), p.tier_standing("bob")
    assert ann is not None and (ann.tier, ann.review_at.year if ann.review_at else None) == (
        "silver", 1971)  # fmt: skip
    assert bob is not None and (bob.tier, bob.review_at) == ("gold", None)
