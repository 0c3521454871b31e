"""A member enrolled while the program had no ``tiers:`` section, in a program that has
one now, enters the ladder at their next event, refund, redemption, assignment or the
daily review (the reverse of ``tests/processing/test_tier_ladder_removed.py``): on the
level their qualifying value reaches then (the base level at least), with an
``upgrade`` entry from no tier, before the event's rules are evaluated. Before, they
stayed with no tier for good: refused base-tier rewards, never upgraded. The batch path
of bulk import agrees; ``tier show`` no longer says the program has no tiers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
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
from tests.cli.support import as_json, fidelite

NO_LADDER = """\
id: p6
name: P6
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1.00}}
"""

LADDER = (
    NO_LADDER
    + """\
  - {id: goldbonus, on: [purchase], when: 'member.tier == "gold"', fixed: 7}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 10, tiers: [bronze]}
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
    return tuple(None if v is None else str(v)[:19] for v in row)


def timeline(p: EventProcessor, member: str) -> list[tuple[Any, ...]]:
    return [
        (r["at"].astimezone().isoformat()[:19], r["kind"], r["from_tier"], r["to_tier"],
         r["value"], r["reason"], r["event_id"])
        for r in p.tier_timeline(member)
    ]  # fmt: skip


def changed(p: EventProcessor) -> list[dict[str, Any]]:
    with p.db.read() as conn:
        rows = conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "tier.changed")
            .order_by(outbox.c.id)
        ).scalars()  # fmt: skip
        return [dict(r) for r in rows]


def enrolled_without_tiers(pdb: Database) -> EventProcessor:
    """b spent 1100 on 2026-01-10 and s 50, while the program had no tiers; then it gains them."""
    before = EventProcessor(pdb, parse_program(NO_LADDER))
    before.process(buy("b1", "b", "1100", "2026-01-10T10:00:00+01:00"))
    before.process(buy("s1", "s", "50", "2026-01-10T10:00:00+01:00"))
    assert stored(before, "b")[0] is None
    return EventProcessor(pdb, parse_program(LADDER))


ENTERED_GOLD = ("2026-02-01T09:00:00", "upgrade", "", "gold", Decimal("1100.0000"),
                "the program has tiers now; spend 1100 qualifies for gold", None)  # fmt: skip


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_an_event_puts_the_member_on_the_ladder_before_the_rules(
    pdb: Database, batch: bool
) -> None:
    p = enrolled_without_tiers(pdb)
    answers = apply(p, [buy("b2", "b", "50", "2026-02-01T10:00:00+01:00"),
                        buy("s2", "s", "20", "2026-02-01T10:00:00+01:00")], batch)  # fmt: skip
    assert [a.outcome.value for a in answers if isinstance(a, Result)] == ["processed"] * 2
    assert outcomes(p, "b2") == {"base": ("matched", 50), "goldbonus": ("matched", 7)}
    assert outcomes(p, "s2")["goldbonus"][0] != "matched"
    assert stored(p, "b") == ("gold", "2026-02-01 09:00:00", "2027-02-01 09:00:00", None, None)
    assert stored(p, "s") == ("bronze", "2026-02-01 09:00:00", None, None, None)
    assert timeline(p, "b") == [ENTERED_GOLD]
    assert timeline(p, "s") == [
        ("2026-02-01T09:00:00", "upgrade", "", "bronze", Decimal("50.0000"),
         "the program has tiers now; spend 50 qualifies for bronze", None),
    ]  # fmt: skip
    assert [(c["member"], c["from_tier"], c["to_tier"], c["kind"]) for c in changed(p)] == [
        ("b", "", "gold", "upgrade"), ("s", "", "bronze", "upgrade")]  # fmt: skip
    # the next event finds nothing left to do
    apply(p, [buy("s3", "s", "10", "2026-03-01T10:00:00+01:00")], batch)
    assert len(timeline(p, "s")) == 1


def test_a_base_tier_reward_is_redeemed_after_the_ladder_comes(pdb: Database) -> None:
    p = enrolled_without_tiers(pdb)
    redemption = p.redeem("s", "mug", key="k1", at=at("2026-02-01T10:00:00+01:00"))
    assert redemption.reward_id == "mug"
    assert p.member_tier("s") == "bronze"
    assert p.ledger.balance(p.program.id, "s", "points").available == 40


def test_the_daily_review_puts_the_member_on_the_ladder(pdb: Database) -> None:
    p = enrolled_without_tiers(pdb)
    done = p.review_tiers(at("2026-02-01T10:00:00+01:00"))
    assert sorted((ref, c.to_tier) for ref, c in done) == [("b", "gold"), ("s", "bronze")]
    assert timeline(p, "b") == [ENTERED_GOLD]
    assert p.review_tiers(at("2026-02-02T10:00:00+01:00")) == []


def test_tier_show_of_a_member_with_no_level_yet(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(NO_LADDER, encoding="utf-8")
    (tmp_path / "new.yaml").write_text(LADDER, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("member", "add", "n1", "-p", tmp_path / "old.yaml", db=db)
    shown = fidelite("tier", "show", "n1", "-p", tmp_path / "new.yaml", "-f", "json", db=db,
                     ok=False)  # fmt: skip
    assert as_json(shown)["error"] == {
        "code": "no_tiers",
        "message": "member 'n1' has no tier yet (enrolled before the program had tiers: "
        "placed on its ladder at their next event or tier review)",
    }
    fidelite("tier", "review", "-p", tmp_path / "new.yaml", db=db)
    shown = as_json(fidelite("tier", "show", "n1", "-p", tmp_path / "new.yaml", "-f", "json",
                             db=db))  # fmt: skip
    assert shown["tier"] == "bronze"
    assert [(t["kind"], t["from"], t["to"]) for t in shown["timeline"]] == [
        ("upgrade", "", "bronze")]  # fmt: skip


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_purchase_dated_before_the_member_entered_the_ladder_plays_nothing_again(
    pdb: Database, batch: bool
) -> None:
    """The member's level and dates count from their entry: a purchase dated before it
    (older history imported later) is no reason to play their history again as if the
    program had always had tiers (gold since 2026-01-10, review 2027-01-10, an upgrade
    entry from a level they never held)."""
    p = enrolled_without_tiers(pdb)
    p.review_tiers(at("2026-02-01T10:00:00+01:00"))
    apply(p, [buy("b0", "b", "50", "2026-01-20T10:00:00+01:00")], batch)
    assert stored(p, "b") == ("gold", "2026-02-01 09:00:00", "2027-02-01 09:00:00", None, None)
    assert timeline(p, "b") == [ENTERED_GOLD]
    assert p.review_tiers(at("2027-01-20T10:00:00+01:00")) == []
