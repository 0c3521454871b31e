"""What a refund gives back beyond points (per-member caps, campaign budgets), what it
refuses (a refund dated before its purchase) and what it cannot take back because it
expired, on both databases."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, ProcessingError
from fidelite.program import parse_program
from fidelite.store import Database
from tests.support import snapshot

LIMITS = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies: [{id: points, name: Points, value: 0.01}]
rules:
  - {id: bonus, on: [purchase], fixed: 50, cap_per_member: {points: 50, period: month}}
  - {id: promo, on: [purchase], per_amount: {points: 1}, budget: %(budget)s}
tiers:
  metric: spend
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
"""


def processor(db: Database, budget: int = 25) -> EventProcessor:
    return EventProcessor(db, parse_program(LIMITS % {"budget": budget}))


def event(event_id: str, kind: str, amount: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": "ann", "at": at,
                                 "amount": Decimal(amount), **extra})  # fmt: skip


def counters(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with db.read() as conn:
        usage = conn.execute(text("SELECT member_ref, rule_id, period, points FROM rule_usage "
                                  "ORDER BY rule_id, period")).all()  # fmt: skip
        budgets = conn.execute(text("SELECT rule_id, used FROM rule_budgets")).all()
    return [tuple(r) for r in usage], [tuple(r) for r in budgets]


def processing_rows(db: Database) -> tuple[Any, ...]:
    """The engine's own tables (the ledger's are in :func:`tests.support.snapshot`)."""
    with db.read() as conn:
        return tuple(
            [tuple(r) for r in conn.execute(text(sql))]
            for sql in (
                "SELECT event_id, refunded_amount, trace FROM processed_events ORDER BY event_id",
                "SELECT event_id, currency, points, reversed FROM event_earnings ORDER BY 1, 2",
                "SELECT member_ref, rule_id, period, points FROM rule_usage ORDER BY 1, 2, 3",
                "SELECT rule_id, used FROM rule_budgets ORDER BY rule_id",
                "SELECT member_ref, tier, purchases FROM member_states ORDER BY member_ref",
                "SELECT member_ref, kind, to_tier, event_id FROM tier_changes ORDER BY id",
                "SELECT event_type, member_ref FROM outbox ORDER BY id",
            )
        )


def test_a_full_refund_gives_back_the_cap_and_the_budget_its_purchase_used(pdb: Database) -> None:
    p = processor(pdb)
    p.process(event("p1", "purchase", "20", "2026-12-01T10:00:00+01:00"))
    assert counters(pdb) == ([("ann", "bonus", "2026-12", 50)], [("promo", 20)])
    # refunded in January: the December cap is given back, not January's
    p.process(event("r1", "refund", "20", "2027-01-05T10:00:00+01:00", refund_of="p1"))
    assert counters(pdb) == ([("ann", "bonus", "2026-12", 0)], [("promo", 0)])
    again = p.process(event("p2", "purchase", "20", "2026-12-20T10:00:00+01:00"))
    assert again.decision is not None
    assert [t.as_dict() for t in again.decision.trace] == [
        {"rule": "bonus", "outcome": "matched", "points": 50, "currency": "points"},
        {"rule": "promo", "outcome": "matched", "points": 20, "currency": "points"},
    ]
    assert counters(pdb) == ([("ann", "bonus", "2026-12", 50)], [("promo", 20)])
    assert p.ledger.balance("shop", "ann", "points", as_of="2027-01-06").available == 70
    assert_invariants(pdb, "shop")


def test_partial_refunds_give_back_cap_and_budget_as_the_points_are_reversed(
    pdb: Database,
) -> None:
    p = processor(pdb, budget=100)
    p.process(event("p1", "purchase", "30", "2026-12-01T10:00:00+01:00"))  # 50 + 30 points
    seen = []
    for n in range(3):  # a third each time: floor(80 k/3), floor(50 k/3), floor(30 k/3)
        p.process(event(f"r{n}", "refund", "10", f"2026-12-0{n + 2}T10:00:00+01:00",
                        refund_of="p1"))  # fmt: skip
        available = p.ledger.balance("shop", "ann", "points", as_of="2026-12-09").available
        seen.append((available, *counters(pdb)))
    assert seen == [
        (54, [("ann", "bonus", "2026-12", 34)], [("promo", 20)]),
        (27, [("ann", "bonus", "2026-12", 17)], [("promo", 10)]),
        (0, [("ann", "bonus", "2026-12", 0)], [("promo", 0)]),
    ]
    assert_invariants(pdb, "shop")


def test_a_refund_dated_before_its_purchase_is_refused_and_changes_nothing(
    pdb: Database,
) -> None:
    p = processor(pdb)
    up = p.process(event("p1", "purchase", "500", "2026-12-01T10:00:00+01:00"))
    assert [c.kind.value for c in up.tier_changes] == ["upgrade"]
    before = (snapshot(pdb), processing_rows(pdb))
    with pytest.raises(ProcessingError) as info:
        p.process(event("r1", "refund", "500", "2026-11-01T10:00:00+01:00", refund_of="p1"))
    assert (info.value.code, info.value.message) == (
        "refund_before_purchase",
        "the refund at 2026-11-01T10:00:00+01:00 is dated before its purchase, "
        "at 2026-12-01T10:00:00+01:00",
    )
    assert (snapshot(pdb), processing_rows(pdb)) == before
    assert [(r["kind"], r["to_tier"]) for r in p.tier_timeline("ann")] == [("upgrade", "silver")]
    # at the purchase's own instant it is taken
    p.process(event("r1", "refund", "500", "2026-12-01T10:00:00+01:00", refund_of="p1"))
    assert [r["kind"] for r in p.tier_timeline("ann")] == ["upgrade", "upgrade_reversed"]
    assert_invariants(pdb, "shop")


EXPIRING = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies: [{id: points, name: Points, value: 0.01}]
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: after_earning, months: 1}
refunds: {shortfall: %s}
"""


@pytest.mark.parametrize("policy", ["within_balance", "debt", "reject"])
def test_a_refund_of_a_purchase_whose_points_expired_takes_nothing_from_the_member(
    pdb: Database, policy: str
) -> None:
    """e1's 100 points expired (the expiry job ran); e2's 80 are the member's own: the
    refund of e1 finds its points already gone, whatever the shortfall policy."""
    program = parse_program(EXPIRING % policy)
    p = EventProcessor(pdb, program)
    p.process(event("e1", "purchase", "100", "2026-09-01T10:00:00+02:00"))
    assert p.ledger.expire("shop", "2026-11-01T00:00:00+01:00", policy=program.expiry,
                           zone=program.zone).points == {"points": 100}  # fmt: skip
    p.process(event("e2", "purchase", "80", "2026-11-20T10:00:00+01:00"))
    refund = p.process(event("r1", "refund", "100", "2026-11-25T10:00:00+01:00",
                             refund_of="e1"))  # fmt: skip
    (receipt,) = refund.receipts
    assert (receipt.points, receipt.already_expired, receipt.shortfall, receipt.written_off,
            receipt.debt_added) == (100, 100, 0, 0, 0)  # fmt: skip
    b = p.ledger.balance("shop", "ann", "points", as_of="2026-11-26")
    assert (b.available, b.debt) == (80, 0)
    with pdb.read() as conn:
        trace = conn.execute(text("SELECT trace FROM processed_events WHERE event_id = 'r1'"))
        (line,) = json_value(trace.scalar_one())
        reversed_ = conn.execute(text("SELECT reversed FROM event_earnings "
                                      "WHERE event_id = 'e1'")).scalar_one()  # fmt: skip
    assert {k: v for k, v in line.items() if k != "transaction_id"} == {
        "currency": "points", "points": 100, "written_off": 0, "debt_added": 0,
        "already_expired": 100,
    }  # fmt: skip
    assert reversed_ == 100
    assert_invariants(pdb, "shop")


def json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
