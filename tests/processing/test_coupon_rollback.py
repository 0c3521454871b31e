"""A purchase refunded in full gives back the single-use code it used: the code is
issued again (usable while its campaign is valid) and the rollback is recorded; a
partial refund keeps it used. The purchase's record keeps the use, so coupon
analytics still see the purchase with its code, and its refund."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from fidelite.analytics.programdb import transactions_from_program
from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, Outcome, ProcessingError
from fidelite.processing.batch import process_events
from fidelite.processing.tables import coupon_rollbacks, coupons, events
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
  - {id: gift, name: Gift, prefix: GIFT, window: {end: "2026-11-20T00:00:00+01:00"}}
"""
AT = datetime.fromisoformat("2026-11-05T10:00:00+01:00")


def setup(db: Database) -> tuple[EventProcessor, str]:
    p = EventProcessor(db, parse_program(PROGRAM))
    p.enrol("ann", at=AT)
    return p, p.issue_coupons("gift", 1, at=AT, member_ref="ann")[0]


def buy(p: EventProcessor, event_id: str, code: str, days: int = 0) -> Any:
    at = AT + timedelta(days=days)
    return p.process(Event(id=event_id, type="purchase", member="ann", at=at,
                           amount=Decimal(100), coupon=code))  # fmt: skip


def refund(p: EventProcessor, event_id: str, amount: str, days: int = 1) -> Any:
    return p.process(Event(id=event_id, type="refund", member="ann", at=AT + timedelta(days=days),
                           amount=Decimal(amount), refund_of="p1"))  # fmt: skip


def state(db: Database) -> dict[str, Any]:
    """The code's row, the rollbacks, and each recorded event's coupon columns."""
    with db.read() as conn:
        code = conn.execute(select(coupons.c.status, coupons.c.used_event_id)).one()
        rollbacks = conn.execute(
            select(coupon_rollbacks.c.purchase_event_id, coupon_rollbacks.c.refund_event_id,
                   coupon_rollbacks.c.rolled_back_at)
            .order_by(coupon_rollbacks.c.purchase_event_id)
        ).all()  # fmt: skip
        recorded = conn.execute(
            select(events.c.event_id, events.c.coupon, events.c.coupon_accepted,
                   events.c.refunded_amount).order_by(events.c.event_id)
        ).all()  # fmt: skip
    return {
        "code": tuple(code),
        "rollbacks": [(r[0], r[1], r[2].isoformat()) for r in rollbacks],
        "events": [(r[0], r[1], r[2], Decimal(r[3])) for r in recorded],
    }


def test_a_full_refund_gives_the_code_back_and_records_it(pdb: Database) -> None:
    p, code = setup(pdb)
    buy(p, "p1", code)
    assert state(pdb)["code"] == ("used", "p1")
    refund(p, "r1", "100")
    assert state(pdb) == {
        "code": ("issued", None),
        "rollbacks": [("p1", "r1", "2026-11-06T09:00:00+00:00")],
        "events": [("p1", code, 1, Decimal(100)), ("r1", None, None, Decimal(0))],
    }
    # Usable again while the campaign runs: the gift rule earns on the next purchase.
    again = buy(p, "p2", code, days=2)
    assert again.decision.coupon.accepted is True
    assert [(e.currency, e.points) for e in again.decision.earnings] == [("points", 150)]
    assert state(pdb)["code"] == ("used", "p2")
    balance = p.ledger.balance("shop", "ann", "points", as_of=AT + timedelta(days=3))
    assert balance.available + balance.pending == 150  # p1's 150 reversed, p2's 150 earned


def test_a_partial_refund_keeps_the_code_used_until_the_rest_is_refunded(pdb: Database) -> None:
    p, code = setup(pdb)
    buy(p, "p1", code)
    refund(p, "r1", "40")
    assert state(pdb)["code"] == ("used", "p1")
    assert state(pdb)["rollbacks"] == []
    kept = buy(p, "p2", code, days=2)
    assert (kept.decision.coupon.accepted, kept.decision.coupon.reason) == (
        False,
        "coupon_already_used",
    )
    assert [(e.currency, e.points) for e in kept.decision.earnings] == [("points", 100)]
    assert state(pdb)["code"] == ("used", "p1")


def test_two_refunds_summing_to_the_whole_amount_roll_back_once(pdb: Database) -> None:
    p, code = setup(pdb)
    buy(p, "p1", code)
    refund(p, "r1", "40")
    before = state(pdb)
    assert before["code"] == ("used", "p1") and before["rollbacks"] == []
    refund(p, "r2", "60", days=2)
    assert state(pdb) == {
        "code": ("issued", None),
        "rollbacks": [("p1", "r2", "2026-11-07T09:00:00+00:00")],
        "events": [("p1", code, 1, Decimal(100)), ("r1", None, None, Decimal(0)),
                   ("r2", None, None, Decimal(0))],
    }  # fmt: skip


def test_a_replayed_refund_rolls_back_once(pdb: Database) -> None:
    p, code = setup(pdb)
    buy(p, "p1", code)
    refund(p, "r1", "100")
    buy(p, "p2", code, days=2)  # the code given back, used again
    after = state(pdb)
    assert refund(p, "r1", "100").outcome is Outcome.duplicate
    assert state(pdb) == after
    assert after["code"] == ("used", "p2")
    assert after["rollbacks"] == [("p1", "r1", "2026-11-06T09:00:00+00:00")]


@pytest.mark.parametrize(
    ("amount", "days", "code"),
    [("100.01", 1, "refund_exceeds_purchase"), ("100", -1, "refund_before_purchase")],
)
def test_a_rejected_refund_changes_nothing(
    pdb: Database, amount: str, days: int, code: str
) -> None:
    p, coupon = setup(pdb)
    buy(p, "p1", coupon)
    before = state(pdb)
    with pytest.raises(ProcessingError) as refused:
        refund(p, "r1", amount, days=days)
    assert refused.value.code == code
    assert state(pdb) == before
    assert before["code"] == ("used", "p1") and before["rollbacks"] == []


def test_a_code_given_back_after_its_campaign_ended_stays_unusable(pdb: Database) -> None:
    p, code = setup(pdb)
    buy(p, "p1", code)
    refund(p, "r1", "100", days=20)  # 25 November: the campaign ended on the 20th
    assert state(pdb)["code"] == ("issued", None)
    late = buy(p, "p2", code, days=21)
    assert (late.decision.coupon.accepted, late.decision.coupon.reason) == (
        False,
        "coupon_not_valid_now",
    )
    assert state(pdb)["code"] == ("issued", None)


def test_a_code_used_in_a_batch_is_given_back_too(pdb: Database) -> None:
    p, code = setup(pdb)
    first = Event(id="p1", type="purchase", member="ann", at=AT, amount=Decimal(100), coupon=code)
    with pdb.write() as conn:
        process_events(p, conn, [first])
    assert state(pdb)["code"] == ("used", "p1")
    refund(p, "r1", "100")
    assert state(pdb)["code"] == ("issued", None)
    assert state(pdb)["rollbacks"] == [("p1", "r1", "2026-11-06T09:00:00+00:00")]


def test_coupon_analytics_still_see_the_use_and_its_refund(pdb: Database) -> None:
    p, code = setup(pdb)
    buy(p, "p1", code)
    refund(p, "r1", "100")
    buy(p, "p2", code, days=2)
    rows = transactions_from_program(pdb.url, "shop").to_pylist()
    assert [(r["order_id"], r["amount"], r["coupon_code"], r["refund"]) for r in rows] == [
        ("p1", 100.0, code, False),
        ("p1", -100.0, None, True),
        ("p2", 100.0, code, False),
    ]


def waiting_on_a_lock(holder: Connection, count: int) -> bool:
    """True once ``count`` other sessions wait for any lock (row or advisory)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    end = time.monotonic() + 30
    while time.monotonic() < end:
        holder.execute(text("SELECT pg_stat_clear_snapshot()"))
        if holder.execute(query).scalar_one() >= count:
            return True
        time.sleep(0.02)
    return False


def test_a_rollback_and_a_purchase_presenting_the_code_run_one_after_the_other(
    pg_only: Database,
) -> None:
    """A full refund of ann's purchase waiting on the code's row, then bob's purchase
    presenting the same (shared) code: nothing deadlocks (both take the gift rule's
    budget lock before the code's row) and the code ends consistent."""
    p = EventProcessor(
        pg_only, parse_program(PROGRAM.replace("fixed: 50}", "fixed: 50, budget: 500}"))
    )
    for ref in ("ann", "bob"):
        p.enrol(ref, at=AT)
    code = p.issue_coupons("gift", 1, at=AT)[0]
    buy(p, "p1", code)
    later = AT + timedelta(days=1)
    bobs = Event(id="b1", type="purchase", member="bob", at=later, amount=Decimal(100), coupon=code)
    holder = pg_only.writer.connect()
    holder.execute(text("SELECT code FROM coupons WHERE code = :c FOR UPDATE"), {"c": code})
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            results = [pool.submit(refund, p, "r1", "100")]
            assert waits_on_a_row_lock(holder, 1)  # the refund, first on the code's row
            results.append(pool.submit(p.process, bobs))
            assert waiting_on_a_lock(holder, 2)  # bob's, on the budget's lock (or the row)
        finally:
            holder.rollback()
            holder.close()
        answers = [r.result(timeout=30) for r in results]
    accepted = answers[1].decision.coupon.accepted
    after = state(pg_only)
    assert after["rollbacks"] == [("p1", "r1", "2026-11-06T09:00:00+00:00")]
    assert after["code"] == (("used", "b1") if accepted else ("issued", None))
    assert_invariants(pg_only, "shop")
