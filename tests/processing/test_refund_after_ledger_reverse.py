"""A refund of a purchase whose points an operator reversed (``ledger reverse``).

The operator's reversal is gone already: the refunds share out what the earn has left,
never more than that and never less than nothing, and the refund is always recorded,
with its money, the purchase count, caps, budget, coupon and tier as for any refund.
(Before: the refund asked its share of the points the purchase first earned; half the
money took 50 more after 40 reversed by hand, the other half was refused with
``reversal_exceeds_original``, and after a full ``ledger reverse`` no refund could be
recorded at all.)
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.engine.tiers import TierState
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.tables import coupons, events, member_states, rule_budgets, rule_usage
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - id: base
    on: [purchase]
    per_amount: {points: 1}
    cap_per_member: {points: 5000, period: month}
    budget: 100000
  - {id: gift, on: [purchase], coupon_campaign: welcome, fixed: 50}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
coupons:
  - {id: welcome, name: Welcome, prefix: WELC}
"""


def event(event_id: str, kind: str, amount: str, day: str, **extra: Any) -> Event:
    return Event.model_validate(
        {"id": event_id, "type": kind, "member": "ann", "at": f"{day}T10:00:00+01:00",
         "amount": Decimal(amount), **extra}
    )  # fmt: skip


def available(p: EventProcessor) -> int:
    return p.ledger.balance("shop", "ann", "points", as_of="2026-12-31T00:00:00Z").available


def earn_transaction(p: EventProcessor, event_id: str) -> int:
    [receipt] = p.process(event(event_id, "purchase", "100", "2026-11-02")).receipts
    return receipt.transaction_id


@pytest.fixture
def p(pdb: Database) -> EventProcessor:
    return EventProcessor(pdb, parse_program(PROGRAM))


def test_refunds_share_out_what_an_operator_left(p: EventProcessor, pdb: Database) -> None:
    earn = earn_transaction(p, "o1")  # 100 points
    p.ledger.reverse("shop", earn, key="op-1", points=40, at="2026-11-03T10:00:00+01:00",
                     reason="goodwill corrected")  # fmt: skip
    assert available(p) == 60
    half = p.process(event("ro1", "refund", "50", "2026-11-04", refund_of="o1"))
    assert [r.points for r in half.receipts] == [30]  # half of the 60 left
    assert available(p) == 30
    rest = p.process(event("ro2", "refund", "50", "2026-11-05", refund_of="o1"))
    assert [r.points for r in rest.receipts] == [30]  # all that is left
    assert available(p) == 0
    with pdb.read() as conn:
        refunded = conn.execute(
            select(events.c.refunded_amount).where(events.c.event_id == "o1")
        ).scalar_one()
        purchases = conn.execute(select(member_states.c.purchases)).scalar_one()
    assert (refunded, purchases) == (Decimal(100), 0)
    assert_invariants(pdb, "shop")


def test_an_operator_reversal_after_a_partial_refund_leaves_the_rest_to_the_last(
    p: EventProcessor, pdb: Database
) -> None:
    earn = earn_transaction(p, "o1")
    p.process(event("ro1", "refund", "50", "2026-11-03", refund_of="o1"))  # 50 points
    p.ledger.reverse("shop", earn, key="op-1", points=40, at="2026-11-04T10:00:00+01:00",
                     reason="corrected")  # fmt: skip
    # 10 left: a quarter of the money would take 15 of the 60 the refunds share out,
    # and they took 50 already: none now, and the last quarter takes the 10 left.
    assert p.process(event("ro2", "refund", "25", "2026-11-05", refund_of="o1")).receipts == []
    assert available(p) == 10
    last = p.process(event("ro3", "refund", "25", "2026-11-06", refund_of="o1"))
    assert [r.points for r in last.receipts] == [10]
    assert available(p) == 0
    assert_invariants(pdb, "shop")


def test_a_purchase_reversed_in_full_by_an_operator_is_still_refunded(
    p: EventProcessor, pdb: Database
) -> None:
    """400 spent with a coupon: silver, 450 points (400 capped and budgeted, 50 for the
    coupon). The operator reverses them all; the refund of 400 reverses none, and gives
    back the money, the purchase, the cap, the budget and the coupon, and takes silver
    away."""
    joined = datetime.fromisoformat("2026-11-01T10:00:00+01:00")
    p.enrol("ann", at=joined)
    [code] = p.issue_coupons("welcome", 1, at=joined, member_ref="ann")
    first = p.process(event("o1", "purchase", "400", "2026-11-02", coupon=code))
    [receipt] = first.receipts
    assert (receipt.points, p.member_tier("ann")) == (450, "silver")
    with pdb.read() as conn:
        used = conn.execute(select(rule_usage.c.points)).scalars().all()
        assert (used, conn.execute(select(rule_budgets.c.used)).scalar_one()) == ([400], 400)
    p.ledger.reverse("shop", receipt.transaction_id, key="op-1",
                     at="2026-11-03T10:00:00+01:00", reason="corrected")  # fmt: skip
    assert available(p) == 0
    result = p.process(event("ro1", "refund", "400", "2026-11-04", refund_of="o1"))
    assert result.receipts == []
    assert [(c.kind.value, c.from_tier, c.to_tier, c.reason) for c in result.tier_changes] == [
        ("upgrade_reversed", "silver", "bronze", "refund: spend 0 no longer reaches 300"),
    ]  # fmt: skip
    assert p.tier_standing("ann") == TierState("bronze", joined, review_at=None)
    with pdb.read() as conn:
        refunded = conn.execute(
            select(events.c.refunded_amount).where(events.c.event_id == "o1")
        ).scalar_one()
        purchases = conn.execute(select(member_states.c.purchases)).scalar_one()
        usage = conn.execute(select(rule_usage.c.points)).scalars().all()
        budget = conn.execute(select(rule_budgets.c.used)).scalar_one()
        status = conn.execute(select(coupons.c.status)).scalar_one()
    assert (refunded, purchases, usage, budget, status) == (
        Decimal(400), 0, [0], 0, "issued",
    )  # fmt: skip
    assert available(p) == 0
    assert_invariants(pdb, "shop")
