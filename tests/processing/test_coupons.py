"""Coupon codes: issued in bulk, optionally to one member, and only that member may use
a code issued to them (single and batch paths)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from fidelite.engine import Event
from fidelite.engine.coupon import parse_code
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, ProcessingError, Result
from fidelite.processing.batch import process_events
from fidelite.processing.tables import coupons, events
from fidelite.program import parse_program
from fidelite.store import Database
from tests.support import waits_on_a_row_lock

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: gift, on: [purchase], coupon_campaign: gift, fixed: 50}
coupons:
  - {id: gift, name: Gift, prefix: GIFT}
"""
AT = datetime.fromisoformat("2026-11-05T10:00:00+01:00")


def setup(db: Database) -> EventProcessor:
    p = EventProcessor(db, parse_program(PROGRAM))
    for ref in ("ann", "bob"):
        p.enrol(ref, at=AT)
    return p


def purchase(event_id: str, member: str, code: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=AT, amount=Decimal(10),
                 coupon=code.lower())  # fmt: skip


def stored(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(
            select(coupons.c.code, coupons.c.campaign, coupons.c.status, coupons.c.member_ref,
                   coupons.c.used_event_id).order_by(coupons.c.code)
        )  # fmt: skip
        return [tuple(r) for r in rows]


def coupon_on(db: Database, event_id: str) -> tuple[Any, ...]:
    with db.read() as conn:
        row = conn.execute(
            select(events.c.coupon, events.c.coupon_accepted).where(events.c.event_id == event_id)
        ).one()
        return tuple(row)


def points(p: EventProcessor, member: str) -> int:
    return (
        p.ledger.balance("shop", member, "points", as_of=AT).pending
        + p.ledger.balance("shop", member, "points", as_of=AT).available
    )


def test_issue_coupons_stores_valid_distinct_codes(pdb: Database) -> None:
    p = setup(pdb)
    codes = p.issue_coupons("gift", 3, at=AT, member_ref="ann")
    assert len(set(codes)) == 3
    assert all(parse_code(c) is not None and c.startswith("GIFT-") for c in codes)
    assert stored(pdb) == sorted((c, "gift", "issued", "ann", None) for c in codes)


@pytest.mark.parametrize(
    ("campaign", "count", "member", "code"),
    [("nope", 1, None, "unknown_campaign"), ("gift", 0, None, "invalid_count"),
     ("gift", 2, "carol", "unknown_member")],
)  # fmt: skip
def test_issue_coupons_refused_stores_nothing(
    pdb: Database, campaign: str, count: int, member: str | None, code: str
) -> None:
    p = setup(pdb)
    with pytest.raises(ProcessingError) as refused:
        p.issue_coupons(campaign, count, at=AT, member_ref=member)
    assert refused.value.code == code
    assert stored(pdb) == []


def test_a_code_issued_to_a_member_is_refused_to_another_on_the_single_path(
    pdb: Database,
) -> None:
    p = setup(pdb)
    (code,) = p.issue_coupons("gift", 1, at=AT, member_ref="ann")
    taken = p.process(purchase("b1", "bob", code))
    assert taken.decision is not None and taken.decision.coupon is not None
    assert (taken.decision.coupon.accepted, taken.decision.coupon.reason) == (
        False,
        "coupon_issued_to_other_member",
    )
    assert points(p, "bob") == 10  # the purchase's own points, not the gift's
    assert stored(pdb) == [(code, "gift", "issued", "ann", None)]  # still ann's to use
    assert coupon_on(pdb, "b1") == (code, 0)
    used = p.process(purchase("a1", "ann", code))
    assert used.decision is not None and used.decision.coupon is not None
    assert used.decision.coupon.accepted
    assert points(p, "ann") == 60
    assert stored(pdb) == [(code, "gift", "used", "ann", "a1")]
    assert_invariants(pdb, "shop")


def test_a_code_issued_to_a_member_is_refused_to_another_on_the_batch_path(
    pdb: Database,
) -> None:
    p = setup(pdb)
    (mine,) = p.issue_coupons("gift", 1, at=AT, member_ref="ann")
    (anyone,) = p.issue_coupons("gift", 1, at=AT)
    batch = [purchase("b1", "bob", mine), purchase("a1", "ann", mine),
             purchase("b2", "bob", anyone)]  # fmt: skip
    with pdb.write() as conn:
        answers = process_events(p, conn, batch)
    reasons = []
    for answer in answers:
        assert isinstance(answer, Result) and answer.decision is not None
        assert answer.decision.coupon is not None
        reasons.append((answer.decision.coupon.accepted, answer.decision.coupon.reason))
    assert reasons == [
        (False, "coupon_issued_to_other_member"),
        (True, "coupon_accepted"),
        (True, "coupon_accepted"),
    ]
    assert (points(p, "ann"), points(p, "bob")) == (60, 70)
    assert sorted(stored(pdb)) == sorted([(mine, "gift", "used", "ann", "a1"),
                                          (anyone, "gift", "used", None, "b2")])  # fmt: skip
    assert coupon_on(pdb, "b1") == (mine, 0)
    assert_invariants(pdb, "shop")


def test_issue_coupons_to_a_member_enrolled_in_the_ledger_only(pdb: Database) -> None:
    p = setup(pdb)
    p.ledger.create_member("shop", "dan")  # e.g. `fidelite member add`: no event yet
    (code,) = p.issue_coupons("gift", 1, at=AT, member_ref="dan")
    assert stored(pdb) == [(code, "gift", "issued", "dan", None)]


CONDITIONAL = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: gift, on: [purchase], coupon_campaign: gift, when: event.amount >= 20.0, fixed: 50}
coupons:
  - {id: gift, name: Gift, prefix: GIFT}
events: [signup]
"""
UNUSED = {"rule": "coupon:gift", "outcome": "coupon_unused", "points": 0,
          "note": "coupon_not_applied: no rule of campaign gift gave points"}  # fmt: skip


def stored_trace(db: Database, event_id: str) -> Any:
    with db.read() as conn:
        return conn.execute(select(events.c.trace).where(events.c.event_id == event_id)).scalar()


@pytest.mark.parametrize("batch", [False, True])
def test_a_code_no_rule_gave_points_for_stays_unused(pdb: Database, batch: bool) -> None:
    """A 10 EUR purchase (the gift needs 20) and a sign-up (no gift rule handles it)
    present the code: neither uses it; the 30 EUR purchase after them does."""
    p = EventProcessor(pdb, parse_program(CONDITIONAL))
    p.enrol("ann", at=AT)
    (code,) = p.issue_coupons("gift", 1, at=AT)
    small, signup, big = (
        purchase("e1", "ann", code),
        Event(id="s1", type="signup", member="ann", at=AT, coupon=code),
        purchase("e2", "ann", code).model_copy(update={"amount": Decimal(30)}),
    )
    if batch:
        with pdb.write() as conn:
            answers = process_events(p, conn, [small, signup, big])
    else:
        answers = [p.process(e) for e in (small, signup, big)]
    coupons_seen = []
    for answer in answers:
        assert isinstance(answer, Result) and answer.decision and answer.decision.coupon
        coupons_seen.append((answer.decision.coupon.accepted, answer.decision.coupon.reason))
    assert coupons_seen == [(False, "coupon_not_applied"), (False, "coupon_not_applied"),
                            (True, "coupon_accepted")]  # fmt: skip
    assert stored_trace(pdb, "e1") == [
        {"rule": "base", "outcome": "matched", "points": 10, "currency": "points"},
        {"rule": "gift", "outcome": "condition_false", "points": 0},
        UNUSED,
    ]
    assert stored_trace(pdb, "s1") == [
        {"rule": "base", "outcome": "event_type", "points": 0},
        {"rule": "gift", "outcome": "event_type", "points": 0},
        UNUSED,
    ]
    assert stored_trace(pdb, "e2")[1] == {
        "rule": "gift", "outcome": "matched", "points": 50, "currency": "points"
    }  # fmt: skip
    assert [coupon_on(pdb, e) for e in ("e1", "s1", "e2")] == [(code, 0), (code, 0), (code, 1)]
    assert stored(pdb) == [(code, "gift", "used", None, "e2")]
    assert points(p, "ann") == 10 + 30 + 50
    assert_invariants(pdb, "shop")


@pytest.mark.postgres
def test_two_members_presenting_one_code_at_once_use_it_once(pg_only: Database) -> None:
    """Both purchases wait for the code (another writer holds its row): the first to
    get it uses it, the second then finds it used and earns its own points only."""
    p = setup(pg_only)
    (code,) = p.issue_coupons("gift", 1, at=AT)
    holder = pg_only.writer.connect()
    holder.execute(text("SELECT code FROM coupons WHERE code = :c FOR UPDATE"), {"c": code})
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            results = [pool.submit(p.process, purchase(f"{ref[0]}1", ref, code))
                       for ref in ("ann", "bob")]  # fmt: skip
            assert waits_on_a_row_lock(holder, 2)
        finally:
            holder.rollback()
            holder.close()
        answers = [r.result(timeout=30) for r in results]
    reasons = sorted((a.decision.coupon.accepted, a.decision.coupon.reason) for a in answers
                     if a.decision and a.decision.coupon)  # fmt: skip
    assert reasons == [(False, "coupon_already_used"), (True, "coupon_accepted")]
    winner = next(a.event_id for a in answers if a.decision and a.decision.coupon.accepted)
    assert stored(pg_only) == [(code, "gift", "used", None, winner)]
    assert sorted([points(p, "ann"), points(p, "bob")]) == [10, 60]
    assert sorted(coupon_on(pg_only, e) for e in ("a1", "b1")) == [(code, 0), (code, 1)]
    assert_invariants(pg_only, "shop")
