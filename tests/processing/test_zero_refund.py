"""A purchase of 0 (a free order) that earned points is refunded in full by a refund
of 0, on SQLite and PostgreSQL, one event at a time and in a batch: its points, its
place in ``member.purchases`` (and the tier it unlocked), its coupon, the rule caps
and budgets it used all come back, once. A refund of 0 of a purchase of more than 0
is refused (``refund_invalid_amount``): it would give nothing back."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, Outcome, ProcessingError
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
  - id: welcome
    on: [purchase]
    when: member.purchases == 0
    fixed: 100
    cap_per_member: {points: 300, period: ever}
  - {id: gift, on: [purchase], coupon_campaign: gift, fixed: 50, budget: 1000}
coupons:
  - {id: gift, name: Gift, prefix: GIFT, window: {end: "2026-12-31T00:00:00+01:00"}}
tiers:
  metric: purchases
  window: rolling
  window_months: 12
  requalify_months: 12
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 1}
"""
AT = datetime.fromisoformat("2026-11-20T10:00:00+01:00")


def setup(db: Database) -> tuple[EventProcessor, str]:
    p = EventProcessor(db, parse_program(PROGRAM))
    p.enrol("ann", at=AT - timedelta(days=1))
    return p, p.issue_coupons("gift", 1, at=AT, member_ref="ann")[0]


def event(event_id: str, kind: str, amount: str, days: int = 0, **extra: Any) -> Event:
    return Event(id=event_id, type=kind, member="ann", at=AT + timedelta(days=days),
                 amount=Decimal(amount), **extra)  # fmt: skip


def state(db: Database, p: EventProcessor) -> dict[str, Any]:
    """Everything a refund may change: balances, member state, counters, coupon, events."""
    queries = {
        "member": "SELECT purchases, tier FROM member_states",
        "usage": "SELECT rule_id, period, points FROM rule_usage ORDER BY rule_id",
        "budgets": "SELECT rule_id, used FROM rule_budgets ORDER BY rule_id",
        "coupon": "SELECT status, used_event_id FROM coupons",
        "rollbacks": "SELECT purchase_event_id, refund_event_id FROM coupon_rollbacks",
        "events": "SELECT event_id, refunded_amount FROM processed_events ORDER BY event_id",
        "earnings": "SELECT event_id, points, reversed FROM event_earnings ORDER BY event_id",
        "tiers": "SELECT from_tier, to_tier, kind, event_id FROM tier_changes ORDER BY id",
        "transactions": "SELECT count(*) FROM ledger_transactions",
    }
    with db.read() as conn:
        found = {k: [tuple(r) for r in conn.execute(text(q))] for k, q in queries.items()}
    found["events"] = [(e, Decimal(a)) for e, a in found["events"]]
    b = p.ledger.balance("shop", "ann", "points", as_of=AT + timedelta(days=10))
    found["balance"] = [(b.available, b.pending, b.debt)]
    return found


def apply(p: EventProcessor, db: Database, batch: bool, *items: Event) -> list[Any]:
    if not batch:
        return [p.process(e) for e in items]
    with db.write() as conn:
        answers = process_events(p, conn, list(items))
    for answer in answers:
        if isinstance(answer, ProcessingError):
            raise answer
    return answers


@pytest.mark.parametrize("batch", [False, True])
def test_a_refund_of_0_is_the_full_refund_of_a_purchase_of_0(pdb: Database, batch: bool) -> None:
    p, code = setup(pdb)
    apply(p, pdb, batch, event("p0", "purchase", "0", coupon=code))
    bought = state(pdb, p)
    assert bought["balance"] == [(150, 0, 0)]  # welcome 100 + gift 50, base 0
    assert bought["member"] == [(1, "silver")]
    assert bought["usage"] == [("welcome", "ever", 100)]
    assert bought["budgets"] == [("gift", 50)]
    assert bought["coupon"] == [("used", "p0")]
    (refunded,) = apply(p, pdb, batch, event("r0", "refund", "0", days=1, refund_of="p0"))
    assert refunded.outcome is Outcome.processed
    assert [r.points for r in refunded.receipts] == [150]  # reversed
    after = state(pdb, p)
    assert after["balance"] == [(0, 0, 0)]
    assert after["member"] == [(0, "bronze")]  # no longer counted: silver taken back
    assert after["usage"] == [("welcome", "ever", 0)]
    assert after["budgets"] == [("gift", 0)]
    assert after["coupon"] == [("issued", None)]
    assert after["rollbacks"] == [("p0", "r0")]
    assert after["events"] == [("p0", Decimal(0)), ("r0", Decimal(0))]
    assert after["earnings"] == [("p0", 150, 150)]
    assert after["tiers"] == [("bronze", "silver", "upgrade", "p0"),
                              ("silver", "bronze", "upgrade_reversed", "r0")]  # fmt: skip
    # Refunded in full once: a second refund, of 0 or more, is refused and changes nothing.
    for again, amount in (("r0b", "0"), ("r0c", "0.01")):
        with pytest.raises(ProcessingError) as refused:
            apply(p, pdb, batch, event(again, "refund", amount, days=2, refund_of="p0"))
        assert refused.value.code == "refund_exceeds_purchase"
        assert str(refused.value) == (
            f"refund_exceeds_purchase: refund of {amount} exceeds the 0 left: the purchase is "
            "refunded in full"
        )
        assert state(pdb, p) == after
    # The next purchase is a first purchase again, and may use the code given back.
    apply(p, pdb, batch, event("p1", "purchase", "10", days=3, coupon=code))
    assert state(pdb, p)["balance"] == [(160, 0, 0)]
    assert state(pdb, p)["member"] == [(1, "silver")]
    assert_invariants(pdb)


@pytest.mark.parametrize("batch", [False, True])
def test_a_refund_of_0_of_a_paid_purchase_is_refused(pdb: Database, batch: bool) -> None:
    p, _ = setup(pdb)
    apply(p, pdb, batch, event("p1", "purchase", "10"))
    before = state(pdb, p)
    with pytest.raises(ProcessingError) as refused:
        apply(p, pdb, batch, event("r1", "refund", "0", days=1, refund_of="p1"))
    assert refused.value.code == "refund_invalid_amount"
    assert str(refused.value) == (
        "refund_invalid_amount: a refund of 0 gives nothing back of a purchase of 10: a "
        "refund amount must be more than 0 (only a purchase of 0 is refunded with 0)"
    )
    assert state(pdb, p) == before
    assert before["balance"] == [(110, 0, 0)]
