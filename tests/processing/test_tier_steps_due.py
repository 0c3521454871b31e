"""A tier step due before the daily job runs is applied when the member's next event,
refund, redemption or assignment arrives: nothing is decided on a stale tier.

The re-qualification date, the end of a grace period or of a manual assignment is
applied under the member's lock, in the same transaction, as the job would apply it
(same entries, without event id, same webhook events, same next dates), then the
event is decided; the job then finds nothing left for that member. The batch path of
bulk import does the same (``tests/processing/test_batch.py`` compares both paths).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.engine import Event
from fidelite.processing import EventProcessor, ProcessingError, Result
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.store import Database

# The QA report's p4: spend, rolling 12 months, no grace.
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
  window: rolling
  window_months: 12
  requalify_months: 12
  grace_months: 0
  downgrade: one_level
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300, earn_multiplier: 1.25}
    - {id: gold, name: Gold, threshold: 1000, earn_multiplier: 1.5}
rewards:
  - {id: tour, name: Tour, kind: experience, cost: 100, tiers: [gold]}
"""

GRACE = PROGRAM.replace("grace_months: 0", "grace_months: 3")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def buy(event_id: str, member: str, amount: str, when: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at(when),
                 amount=Decimal(amount))  # fmt: skip


def points_of(p: EventProcessor, event_id: str) -> int:
    with p.db.read() as conn:
        return int(conn.execute(
            text("SELECT sum(points) FROM event_earnings WHERE program_id = :p AND event_id = :e"),
            {"p": p.program.id, "e": event_id},
        ).scalar_one())  # fmt: skip


def rows(p: EventProcessor, member: str) -> list[tuple[Any, ...]]:
    return [
        (r["at"].astimezone().isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["reason"], r["event_id"])
        for r in p.tier_timeline(member)
    ]  # fmt: skip


def hooks(p: EventProcessor, member: str) -> list[tuple[str, Any]]:
    with p.db.read() as conn:
        found = conn.execute(
            text("SELECT event_type, payload FROM outbox WHERE program_id = :p "
                 "AND member_ref = :m ORDER BY id"),
            {"p": p.program.id, "m": member},
        ).all()  # fmt: skip
    return [(kind, payload if isinstance(payload, dict) else json.loads(payload))
            for kind, payload in found]  # fmt: skip


def apply(p: EventProcessor, events: list[Event], batch: bool) -> list[Any]:
    if not batch:
        return [p.process(event) for event in events]
    with p.db.write() as conn:
        return process_events(p, conn, events)


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_an_event_after_a_due_requalification_is_decided_on_the_tier_it_leaves(
    pdb: Database, batch: bool
) -> None:
    """The QA report's Y and Y2: silver from 400 on 2025-01-10, nothing bought since; Y's
    purchase of 1000 on 2026-02-01 arrives before the job has run for 2026-01-10, Y2's
    after. Both are bronze from 2026-01-10 and earn 1000 (not silver's 1250)."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    apply(p, [buy("y1", "Y", "400", "2025-01-10T10:00:00+01:00"),
              buy("z1", "Y2", "400", "2025-01-10T10:00:00+01:00")], batch)  # fmt: skip
    (answer,) = apply(p, [buy("y2", "Y", "1000", "2026-02-01T10:00:00+01:00")], batch)
    assert isinstance(answer, Result)
    assert [(c.kind.value, c.to_tier) for c in answer.tier_changes] == [("upgrade", "gold")]
    done = p.review_tiers(at("2026-01-20T00:00:00+01:00"))
    assert [(ref, c.kind.value) for ref, c in done] == [("Y2", "downgrade")]  # Y's is done
    apply(p, [buy("z2", "Y2", "1000", "2026-02-01T10:00:00+01:00")], batch)
    assert p.review_tiers(at("2026-12-01T00:00:00+01:00")) == []
    assert points_of(p, "y2") == points_of(p, "z2") == 1000
    expected = [
        ("2025-01-10T09:00:00+00:00", "upgrade", "bronze", "silver", Decimal("400.0000"),
         "spend 400 reached 300", "y1"),
        ("2026-01-10T09:00:00+00:00", "downgrade", "silver", "bronze", Decimal("0.0000"),
         "spend 0 below 300 at re-qualification", None),
        ("2026-02-01T09:00:00+00:00", "upgrade", "bronze", "gold", Decimal("1000.0000"),
         "spend 1000 reached 1000", "y2"),
    ]  # fmt: skip
    assert rows(p, "Y") == expected
    assert rows(p, "Y2") == [(*r[:-1], {"y1": "z1", "y2": "z2"}.get(r[-1], r[-1]))
                             for r in expected]  # fmt: skip
    standing = p.tier_standing("Y")
    assert standing is not None
    assert (standing.tier, standing.since, standing.review_at) == (
        "gold", at("2026-02-01T10:00:00+01:00"), at("2027-02-01T10:00:00+01:00"))  # fmt: skip
    # the step is announced as the job announces it, before the event's points
    kinds = [(kind, data.get("kind"), data.get("event_id")) for kind, data in hooks(p, "Y")]
    assert kinds[-3:] == [("tier.changed", "downgrade", None), ("points.earned", None, "y2"),
                          ("tier.changed", "upgrade", "y2")]  # fmt: skip


def test_a_step_due_at_the_instant_of_an_event_comes_first(pdb: Database) -> None:
    """A grace period ending at ``t`` does not include ``t``: a purchase at that instant
    comes after the downgrade, whether it arrives before the job or after it (the QA
    report's K and K2)."""
    p = EventProcessor(pdb, parse_program(GRACE))
    for member in ("K", "K2"):
        p.process(buy(f"{member}-1", member, "400", "2025-01-10T10:00:00+01:00"))
    p.review_tiers(at("2026-01-11T00:00:00+01:00"))  # grace until 2026-04-10T10:00+02:00
    end = "2026-04-10T10:00:00+02:00"
    p.process(buy("K-2", "K", "300", end))  # before the job
    p.review_tiers(at(end))
    p.process(buy("K2-2", "K2", "300", end))  # after it
    assert (
        [r[1:4] for r in rows(p, "K")]
        == [r[1:4] for r in rows(p, "K2")]
        == [
            ("upgrade", "bronze", "silver"),
            ("grace_started", "silver", "silver"),
            ("downgrade", "silver", "bronze"),
            ("upgrade", "bronze", "silver"),
        ]
    )
    assert [r[0] for r in rows(p, "K")] == [r[0] for r in rows(p, "K2")]


def test_a_redemption_after_the_assignment_ended_is_decided_on_the_level_it_leaves(
    pdb: Database,
) -> None:
    """The QA report's M: gold by hand until an end now past, the job not yet run. The
    gold-only reward is refused (nothing changes: not even the step, left to the next
    call or the job); a purchase then earns silver's x1.25, after the end written as the
    job writes it."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.process(buy("m1", "M", "400", "2026-11-01T10:00:00+01:00"))  # silver
    p.process(buy("m2", "M", "300", "2026-11-02T10:00:00+01:00"))  # 700: still silver
    end = at("2026-11-20T10:00:00+01:00")
    p.assign_tier("M", "gold", at=at("2026-11-03T10:00:00+01:00"), until=end,
                  reason="complaint 1")  # fmt: skip
    before = (rows(p, "M"), p.tier_standing("M"), len(hooks(p, "M")),
              p.ledger.balance("p4", "M", "points", as_of=end).available)  # fmt: skip
    with pytest.raises(ProcessingError) as refused:
        p.redeem("M", "tour", key="r1", at=end + timedelta(minutes=1))
    assert refused.value.code == "reward_not_available_for_tier"
    assert "member 'M' has tier 'silver'" in refused.value.message
    after = (rows(p, "M"), p.tier_standing("M"), len(hooks(p, "M")),
             p.ledger.balance("p4", "M", "points", as_of=end).available)  # fmt: skip
    assert after == before
    assert p.redemptions_of("M") == []
    p.process(buy("m3", "M", "100", "2026-11-20T10:02:00+01:00"))
    assert points_of(p, "m3") == 125  # silver x1.25, not gold's 150
    assert rows(p, "M")[-1] == (
        "2026-11-20T09:00:00+00:00", "assignment_expired", "gold", "silver",
        Decimal("700.0000"), "manual assignment ended; spend 700 qualifies for silver",
        None,
    )  # fmt: skip
    assert p.review_tiers(end + timedelta(days=1)) == []


def test_an_assignment_after_a_due_step_starts_from_the_level_it_leaves(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.process(buy("a1", "A", "400", "2025-01-10T10:00:00+01:00"))
    p.assign_tier("A", "gold", at=at("2026-02-01T10:00:00+01:00"),
                  until=at("2026-03-01T10:00:00+01:00"), reason="goodwill")  # fmt: skip
    assert [r[1:4] for r in rows(p, "A")] == [
        ("upgrade", "bronze", "silver"),
        ("downgrade", "silver", "bronze"),  # due 2026-01-10, applied first
        ("assigned", "bronze", "gold"),
    ]


def test_a_refund_after_a_due_step_applies_it_first(pdb: Database) -> None:
    """A refund of an unrelated purchase after the re-qualification date: the step is
    written as the job would have written it (with the purchase still whole), then the
    refund is judged from there."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.process(buy("b1", "B", "400", "2025-01-10T10:00:00+01:00"))  # silver
    p.process(buy("b2", "B", "50", "2025-12-01T10:00:00+01:00"))
    p.process(Event(id="r1", type="refund", member="B", at=at("2026-02-01T10:00:00+01:00"),
                    amount=Decimal("50"), refund_of="b2"))  # fmt: skip
    assert [(*r[1:5], r[6]) for r in rows(p, "B")] == [
        ("upgrade", "bronze", "silver", Decimal("400.0000"), "b1"),
        ("downgrade", "silver", "bronze", Decimal("50.0000"), None),
    ]
    assert p.review_tiers(at("2026-03-01T00:00:00+01:00")) == []
