"""Refunds through the ledger: proportional reversal, spent points, debt, tiers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.engine import Event
from fidelite.ledger import Ledger, Rejected, assert_invariants
from fidelite.processing import EventProcessor, Outcome, ProcessingError
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.store import Database
from tests.support import waits_on_a_row_lock

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 80}
pending: {days: %(pending)s}
refunds: {shortfall: %(shortfall)s}
"""


def processor(db: Database, *, shortfall: str = "debt", pending: int = 0) -> EventProcessor:
    program = parse_program(PROGRAM % {"shortfall": shortfall, "pending": pending})
    return EventProcessor(db, program)


def event(event_id: str, kind: str, amount: str, day: str, **extra: Any) -> Event:
    return Event.model_validate(
        {"id": event_id, "type": kind, "member": "ann", "at": f"{day}T10:00:00+01:00",
         "amount": Decimal(amount), **extra}
    )  # fmt: skip


def balance(p: EventProcessor, day: str) -> tuple[int, int, int]:
    b = p.ledger.balance("shop", "ann", "points", as_of=f"{day}T12:00:00+01:00")
    return b.available, b.pending, b.debt


def test_refund_after_spend_claws_back_into_debt(pdb: Database) -> None:
    p = processor(pdb, shortfall="debt")
    p.process(event("p1", "purchase", "100.00", "2026-11-02"))  # +100
    p.ledger.spend("shop", "ann", "points", 70, key="s1", at="2026-11-03T10:00:00+01:00")
    assert balance(p, "2026-11-03") == (30, 0, 0)
    # 40 of 100 EUR back: reverse 40 points; 30 are there, 10 become debt.
    first = p.process(event("r1", "refund", "40.00", "2026-11-04", refund_of="p1"))
    assert [(r.points, r.debt_added) for r in first.receipts] == [(40, 10)]
    assert balance(p, "2026-11-04") == (0, 0, 10)
    # The remaining 60 EUR: 60 more points, all debt.
    p.process(event("r2", "refund", "60.00", "2026-11-05", refund_of="p1"))
    assert balance(p, "2026-11-05") == (0, 0, 70)
    # A new purchase repays the debt first: 50 points -> debt 20, nothing available.
    p.process(event("p2", "purchase", "50.00", "2026-11-06"))
    assert balance(p, "2026-11-06") == (0, 0, 20)
    assert_invariants(pdb, "shop")


def test_refund_within_balance_writes_off_the_rest(pdb: Database) -> None:
    p = processor(pdb, shortfall="within_balance")
    p.process(event("p1", "purchase", "100.00", "2026-11-02"))
    p.ledger.spend("shop", "ann", "points", 70, key="s1", at="2026-11-03T10:00:00+01:00")
    result = p.process(event("r1", "refund", "100.00", "2026-11-04", refund_of="p1"))
    assert [(r.points, r.written_off, r.debt_added) for r in result.receipts] == [(100, 70, 0)]
    assert balance(p, "2026-11-04") == (0, 0, 0)
    assert_invariants(pdb, "shop")


def test_refund_rejected_policy_leaves_everything(pdb: Database) -> None:
    p = processor(pdb, shortfall="reject")
    p.process(event("p1", "purchase", "100.00", "2026-11-02"))
    p.ledger.spend("shop", "ann", "points", 70, key="s1", at="2026-11-03T10:00:00+01:00")
    with pytest.raises(Rejected) as info:
        p.process(event("r1", "refund", "100.00", "2026-11-04", refund_of="p1"))
    assert info.value.code.value == "points_already_spent"
    assert balance(p, "2026-11-04") == (30, 0, 0)
    # Not recorded: the same refund can be retried once the policy allows it.
    assert p.process(event("r1", "refund", "30.00", "2026-11-04", refund_of="p1")).outcome is (
        Outcome.processed
    )
    assert balance(p, "2026-11-04") == (0, 0, 0)


def test_partial_refund_reverses_pending_points(pdb: Database) -> None:
    p = processor(pdb, pending=14)
    p.process(event("p1", "purchase", "80.00", "2026-11-02"))
    assert balance(p, "2026-11-02") == (0, 80, 0)
    p.process(event("r1", "refund", "20.00", "2026-11-03", refund_of="p1"))  # floor(80 x 0.25)
    assert balance(p, "2026-11-03") == (0, 60, 0)
    assert_invariants(pdb, "shop")


def test_refund_undoes_the_upgrade_it_unlocked(pdb: Database) -> None:
    p = processor(pdb)
    p.process(event("p1", "purchase", "30.00", "2026-11-02"))
    up = p.process(event("p2", "purchase", "60.00", "2026-11-03"))  # 90 >= 80: silver
    assert [(c.kind.value, c.to_tier) for c in up.tier_changes] == [("upgrade", "silver")]
    down = p.process(event("r1", "refund", "20.00", "2026-11-04", refund_of="p2"))
    assert [(c.kind.value, c.from_tier, c.to_tier, c.value) for c in down.tier_changes] == [
        ("upgrade_reversed", "silver", "bronze", Decimal("70.00"))
    ]
    assert p.member_tier("ann") == "bronze"
    assert [(r["kind"], r["to_tier"]) for r in p.tier_timeline("ann")] == [
        ("upgrade", "silver"),
        ("upgrade_reversed", "bronze"),
    ]


def test_refund_keeps_the_tier_a_later_purchase_earns_from_that_purchase(pdb: Database) -> None:
    p = processor(pdb)
    p.process(event("p1", "purchase", "90.00", "2026-11-02"))  # 90 >= 80: silver
    p.process(event("p2", "purchase", "85.00", "2026-11-05"))
    kept = p.process(event("r1", "refund", "90.00", "2026-11-06", refund_of="p1"))
    assert [(c.kind.value, c.from_tier, c.to_tier, c.value) for c in kept.tier_changes] == [
        ("requalified", "silver", "silver", Decimal("85.00"))
    ]
    standing = p.tier_standing("ann")
    assert standing is not None
    assert (standing.tier, standing.since) == (
        "silver", datetime.fromisoformat("2026-11-05T10:00:00+01:00"),
    )  # fmt: skip
    assert [(r["kind"], r["from_tier"], r["to_tier"]) for r in p.tier_timeline("ann")] == [
        ("upgrade", "bronze", "silver"),
        ("requalified", "silver", "silver"),
    ]
    p.process(event("r2", "refund", "85.00", "2026-11-07", refund_of="p2"))  # judged in turn
    assert p.member_tier("ann") == "bronze"
    assert_invariants(pdb, "shop")


def test_refund_errors_have_codes(pdb: Database) -> None:
    p = processor(pdb)
    with pytest.raises(ProcessingError) as unknown:
        p.process(event("r1", "refund", "1.00", "2026-11-04", refund_of="nope"))
    assert unknown.value.code == "unknown_purchase"
    p.process(event("p1", "purchase", "10.00", "2026-11-02"))
    with pytest.raises(ProcessingError) as too_much:
        p.process(event("r2", "refund", "10.01", "2026-11-04", refund_of="p1"))
    assert too_much.value.code == "refund_exceeds_purchase"


def test_process_same_event_twice_posts_once(pdb: Database) -> None:
    p = processor(pdb)
    first = p.process(event("p1", "purchase", "12.00", "2026-11-02"))
    again = processor(pdb).process(event("p1", "purchase", "12.00", "2026-11-02"))
    assert (first.outcome, again.outcome) == (Outcome.processed, Outcome.duplicate)
    assert balance(p, "2026-11-02") == (12, 0, 0)
    assert isinstance(p.ledger, Ledger)


def test_decision_dates_reach_the_ledger(pdb: Database) -> None:
    p = processor(pdb, pending=14)
    p.process(event("p1", "purchase", "10.00", "2026-11-02"))
    held = p.ledger.balance("shop", "ann", "points", as_of="2026-11-16T09:59:59+01:00")
    assert (held.available, held.pending) == (0, 10)
    # available from the end of the hold, 14 days after the purchase, before the job runs
    assert balance(p, "2026-11-16") == (10, 0, 0)
    assert p.ledger.release_due("shop", datetime.fromisoformat("2026-11-16T10:00:00+01:00"))
    assert balance(p, "2026-11-16") == (10, 0, 0)


FIRST_PURCHASE = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: first, on: [purchase], when: "member.purchases == 0", fixed: 100}
"""


def purchases_of(p: EventProcessor) -> int:
    profile = p.member_profile("ann")
    assert profile is not None
    return int(profile["purchases"])


def test_a_fully_refunded_purchase_no_longer_counts_as_a_purchase(pdb: Database) -> None:
    # member.purchases counts the purchases the member kept: a refund of the whole
    # amount (in one or several parts) takes the purchase back, and what it unlocked
    # (here the first-purchase bonus) is unlocked again by the next purchase.
    p = EventProcessor(pdb, parse_program(FIRST_PURCHASE))
    p.process(event("p1", "purchase", "10.00", "2026-11-02"))
    assert (purchases_of(p), balance(p, "2026-11-02")) == (1, (110, 0, 0))
    p.process(event("r1", "refund", "4.00", "2026-11-03", refund_of="p1"))
    assert (purchases_of(p), balance(p, "2026-11-03")) == (1, (66, 0, 0))  # partly kept
    p.process(event("r2", "refund", "6.00", "2026-11-04", refund_of="p1"))
    assert (purchases_of(p), balance(p, "2026-11-04")) == (0, (0, 0, 0))
    again = p.process(event("p2", "purchase", "20.00", "2026-11-05"))
    assert again.decision is not None and again.decision.points("points") == 120
    assert purchases_of(p) == 1
    assert_invariants(pdb, "shop")


def test_a_full_refund_through_the_batch_path_counts_the_purchase_back(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(FIRST_PURCHASE))
    batch = [event("p1", "purchase", "10.00", "2026-11-02"),
             event("r1", "refund", "10.00", "2026-11-03", refund_of="p1"),
             event("p2", "purchase", "20.00", "2026-11-05"),
             event("p3", "purchase", "5.00", "2026-11-06")]  # fmt: skip
    with pdb.write() as conn:
        process_events(p, conn, batch)
    assert purchases_of(p) == 2
    assert balance(p, "2026-11-06") == (125, 0, 0)  # p2: 20 + 100, p3: 5


@pytest.mark.postgres
def test_two_concurrent_full_refunds_of_one_purchase_count_it_out_once(pg_only: Database) -> None:
    """Both refunds read the purchase, then wait for the member (another writer holds
    it). The second must see what the first refunded: refused, not a second reversal
    or a second 'refunded in full' that would count the purchase out of
    member.purchases twice."""
    p = EventProcessor(pg_only, parse_program(FIRST_PURCHASE))
    p.process(event("p1", "purchase", "100.00", "2026-11-02"))
    p.process(event("p2", "purchase", "5.00", "2026-11-02"))
    assert purchases_of(p) == 2
    holder = pg_only.writer.connect()
    holder.execute(text("SELECT id FROM members WHERE ref = 'ann' FOR UPDATE"))

    def refund(event_id: str) -> object:
        try:
            return p.process(event(event_id, "refund", "100.00", "2026-11-03", refund_of="p1"))
        except ProcessingError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            results = [pool.submit(refund, "r1"), pool.submit(refund, "r2")]
            assert waits_on_a_row_lock(holder, 2)
        finally:
            holder.rollback()
            holder.close()
        answers = [r.result(timeout=30) for r in results]
    refused = [a for a in answers if isinstance(a, ProcessingError)]
    assert [e.code for e in refused] == ["refund_exceeds_purchase"]
    assert purchases_of(p) == 1
    with pg_only.read() as conn:
        refunded = conn.execute(
            text("SELECT refunded_amount FROM processed_events WHERE event_id = 'p1'")
        ).scalar_one()
    assert refunded == Decimal("100.0000")
    # p1 earned 100 + the first-purchase bonus 100, reversed once; p2 earned 5.
    assert balance(p, "2026-11-03") == (5, 0, 0)
    assert_invariants(pg_only, "shop")
