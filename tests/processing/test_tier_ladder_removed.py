"""A member who reached a level, in a program whose whole ``tiers:`` section has been
removed since, has no level left to hold: moved to no tier (``member.tier`` ``""``) at
their next event, refund or redemption, before the event's rules are evaluated, with a
``downgrade`` entry naming the removed level, as for a level removed from a ladder
(``tests/processing/test_tier_removed_level.py``). The batch path of bulk import agrees.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.processing import EventProcessor, Result
from fidelite.processing.batch import process_events
from fidelite.processing.tables import events, member_states
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.tables import outbox

LADDER = """\
id: p5
name: P5
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
    - {id: gold, name: Gold, threshold: 1000}
"""

NO_LADDER = LADDER.split("tiers:\n")[0].replace(
    "rules:\n",
    "rules:\n  - {id: notier, on: [purchase], when: 'member.tier == \"\"', fixed: 5}\n",
)


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def buy(event_id: str, member: str, amount: str, when: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at(when),
                 amount=Decimal(amount))  # fmt: skip


def apply(p: EventProcessor, batch_: list[Event], batch: bool) -> list[Any]:
    if not batch:
        return [p.process(event) for event in batch_]
    with p.db.write() as conn:
        return process_events(p, conn, batch_)


def outcomes(p: EventProcessor, event_id: str) -> dict[str, tuple[str, int]]:
    with p.db.read() as conn:
        trace = conn.execute(
            select(events.c.trace).where(events.c.program_id == p.program.id,
                                         events.c.event_id == event_id)
        ).scalar_one()  # fmt: skip
    return {step["rule"]: (step["outcome"], step["points"]) for step in trace}


def stored(p: EventProcessor, member: str) -> tuple[Any, ...]:
    with p.db.read() as conn:
        row = conn.execute(
            select(member_states.c.tier, member_states.c.tier_since, member_states.c.review_at,
                   member_states.c.grace_until, member_states.c.assigned_until)
            .where(member_states.c.program_id == p.program.id,
                   member_states.c.member_ref == member)
        ).one()  # fmt: skip
    return tuple(row)


def changed(p: EventProcessor) -> list[dict[str, Any]]:
    """The payloads of the tier.changed events after b's upgrade to gold."""
    with p.db.read() as conn:
        rows = conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "tier.changed")
            .order_by(outbox.c.id)
        ).scalars()  # fmt: skip
        return [dict(r) for r in rows][1:]


def timeline(p: EventProcessor, member: str) -> list[tuple[Any, ...]]:
    return [
        (r["at"].astimezone().isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["reason"], r["event_id"])
        for r in p.tier_timeline(member)
    ]  # fmt: skip


GOLD = ("2026-01-10T09:00:00+00:00", "upgrade", "bronze", "gold", Decimal("1100.0000"),
        "spend 1100 reached 1000", "b1")  # fmt: skip
LEFT = ("2026-02-01T09:00:00+00:00", "downgrade", "gold", "", Decimal("0.0000"),
        "level gold is no longer in the program; the program has no tiers", None)  # fmt: skip


def gold_member(pdb: Database) -> EventProcessor:
    """b gold from a purchase of 1100 on 2026-01-10; then the ladder leaves the program."""
    EventProcessor(pdb, parse_program(LADDER)).process(
        buy("b1", "b", "1100", "2026-01-10T10:00:00+01:00")
    )
    return EventProcessor(pdb, parse_program(NO_LADDER))


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_an_event_moves_the_member_to_no_tier_before_the_rules(pdb: Database, batch: bool) -> None:
    p = gold_member(pdb)
    answers = apply(p, [buy("b2", "b", "50", "2026-02-01T10:00:00+01:00"),
                        buy("n1", "new", "50", "2026-02-01T10:00:00+01:00")], batch)  # fmt: skip
    assert [a.outcome.value for a in answers if isinstance(a, Result)] == ["processed"] * 2
    # b has no level now, as the newcomer: notier matches for both
    assert outcomes(p, "b2") == {"notier": ("matched", 5), "base": ("matched", 50)}
    assert outcomes(p, "n1") == {"notier": ("matched", 5), "base": ("matched", 50)}
    assert p.ledger.balance(p.program.id, "b", "points").available == 1100 + 55
    assert stored(p, "b") == (None, None, None, None, None)
    assert p.member_tier("b") is None
    assert p.tier_standing("b") is None
    assert timeline(p, "b") == [GOLD, LEFT]
    assert timeline(p, "new") == []
    assert changed(p) == [
        {"member": "b", "from_tier": "gold", "to_tier": "", "kind": "downgrade",
         "reason": LEFT[5], "at": "2026-02-01T09:00:00+00:00", "event_id": None},
    ]  # fmt: skip
    # the next event finds nothing left to move
    apply(p, [buy("b3", "b", "10", "2026-03-01T10:00:00+01:00")], batch)
    assert timeline(p, "b") == [GOLD, LEFT]
    assert outcomes(p, "b3") == {"notier": ("matched", 5), "base": ("matched", 10)}


def test_a_redemption_moves_the_member_to_no_tier(pdb: Database) -> None:
    EventProcessor(pdb, parse_program(LADDER)).process(
        buy("b1", "b", "1100", "2026-01-10T10:00:00+01:00")
    )
    mug = "  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100}\n"
    rewards = NO_LADDER + "rewards:\n" + mug
    p = EventProcessor(pdb, parse_program(rewards))
    p.redeem("b", "mug", key="k1", at=at("2026-02-01T10:00:00+01:00"))
    assert timeline(p, "b") == [GOLD, LEFT]
    assert stored(p, "b") == (None, None, None, None, None)


def test_a_refund_moves_the_member_to_no_tier(pdb: Database) -> None:
    p = gold_member(pdb)
    answer = p.process(Event(id="r1", type="refund", member="b",
                             at=at("2026-02-01T10:00:00+01:00"), amount=Decimal("100"),
                             refund_of="b1"))  # fmt: skip
    assert isinstance(answer, Result)
    assert timeline(p, "b") == [GOLD, LEFT]
    assert stored(p, "b") == (None, None, None, None, None)
