"""Two copies of one event sent at the same time (two server processes, another
Idempotency-Key or none; the same event id): both pass the first "recorded?" check and
wait for the member's lock; the one that gets it second must find the event recorded
under the lock and answer ``duplicate``, exactly as a copy sent later is answered,
never refuse it (over-refund, ledger key conflict, the event's primary key).

Each copy runs as the API's group commit runs it: inside a writing transaction of its
own processor (``process(event, conn=...)``). On PostgreSQL a session holds the member's
row lock until both copies wait on it, so they really overlap; SQLite's writers are
serial (``BEGIN IMMEDIATE``), the copies then take turns."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, Outcome, Result
from fidelite.processing.tables import coupon_rollbacks, coupons, events, member_states
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.tables import outbox
from tests.support import waits_on_a_row_lock

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: gift, on: [purchase], coupon_campaign: gift, fixed: 50}
  - {id: review, on: [review], fixed: 20}
coupons:
  - {id: gift, name: Gift, prefix: GIFT}
"""
AT = datetime.fromisoformat("2026-11-05T10:00:00+01:00")


def two_processors(db: Database) -> tuple[EventProcessor, EventProcessor, str]:
    """Two processors of the program (as two server processes), member ann, her code."""
    first, second = (EventProcessor(db, parse_program(PROGRAM)) for _ in range(2))
    first.enrol("ann", at=AT)
    return first, second, first.issue_coupons("gift", 1, at=AT, member_ref="ann")[0]


def apply(p: EventProcessor, event: Event) -> Result:
    """``event`` in a writing transaction of its own, as the API applies it."""
    with p.db.write() as conn:
        return p.process(event, conn=conn)


def race(db: Database, *calls: Callable[[], Result]) -> list[Result | BaseException]:
    """Run ``calls`` at once; on PostgreSQL, released only once all wait for ann's lock."""
    holder = db.writer.connect() if db.is_postgres else None
    if holder is not None:
        holder.execute(text("SELECT id FROM members WHERE ref = 'ann' FOR UPDATE"))
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        try:
            futures: list[Future[Result]] = [pool.submit(call) for call in calls]
            if holder is not None:
                assert waits_on_a_row_lock(holder, len(calls))
        finally:
            if holder is not None:
                holder.rollback()
                holder.close()
        return [f.exception(timeout=60) or f.result() for f in futures]


def outcomes(answers: list[Result | BaseException]) -> list[str]:
    return sorted(a.outcome.value if isinstance(a, Result) else repr(a) for a in answers)


def books(db: Database) -> dict[str, Any]:
    """Ledger entries and balances, the recorded events, the code and its rollbacks."""
    with db.read() as conn:
        rows = {
            "transactions": "SELECT kind, currency, points, reversed_points, idempotency_key "
            "FROM ledger_transactions ORDER BY id",
            "postings": "SELECT p.points, a.kind FROM postings p JOIN accounts a "
            "ON a.id = p.account_id ORDER BY p.id",
            "balances": "SELECT kind, balance FROM accounts WHERE member_id IS NOT NULL "
            "ORDER BY kind",
        }
        found: dict[str, Any] = {
            k: [tuple(r) for r in conn.execute(text(q))] for k, q in rows.items()
        }
        found["events"] = [
            (r[0], Decimal(r[1]))
            for r in conn.execute(
                select(events.c.event_id, events.c.refunded_amount).order_by(events.c.event_id)
            )
        ]
        found["code"] = tuple(conn.execute(select(coupons.c.status, coupons.c.used_event_id)).one())
        found["rollbacks"] = [
            tuple(r)
            for r in conn.execute(
                select(coupon_rollbacks.c.purchase_event_id, coupon_rollbacks.c.refund_event_id)
            )
        ]
        found["purchases"] = conn.execute(select(member_states.c.purchases)).scalar_one()
        found["announced"] = list(conn.execute(select(outbox.c.event_type)
                                               .order_by(outbox.c.id)).scalars())  # fmt: skip
    return found  # fmt: skip


def test_two_copies_of_a_full_refund_apply_it_once(pdb: Database) -> None:
    first, second, code = two_processors(pdb)
    purchase = Event(id="p1", type="purchase", member="ann", at=AT, amount=Decimal(100),
                     coupon=code)  # fmt: skip
    apply(first, purchase)
    refund = Event(id="r1", type="refund", member="ann", at=AT + timedelta(days=1),
                   amount=Decimal(100), refund_of="p1")  # fmt: skip
    answers = race(pdb, lambda: apply(first, refund), lambda: apply(second, refund))
    assert outcomes(answers) == ["duplicate", "processed"]
    after = books(pdb)
    assert after["transactions"] == [
        ("earn", "points", 150, 150, "event:p1:points"),
        ("reverse", "points", 150, 0, "refund:r1:1"),  # 1: the earn's transaction id
    ]
    assert after["balances"] == [("available", 0), ("debt", 0), ("pending", 0)]
    assert after["postings"] == [(150, "available"), (-150, "issued"),
                                 (-150, "available"), (150, "issued")]  # fmt: skip
    assert after["events"] == [("p1", Decimal(100)), ("r1", Decimal(0))]
    assert (after["code"], after["rollbacks"], after["purchases"]) == (
        ("issued", None), [("p1", "r1")], 0,
    )  # fmt: skip
    assert after["announced"].count("coupon.restored") == 1  # the code given back once
    # A copy sent later is answered the same way, and changes nothing either.
    assert apply(second, refund).outcome is Outcome.duplicate
    assert books(pdb) == after
    assert_invariants(pdb, "shop")


def test_two_copies_of_a_purchase_with_a_code_apply_it_once(pdb: Database) -> None:
    """The second copy would see the code used (by the first) and earn 100 points, not
    150: under the same ledger key, a conflict, if it were evaluated at all."""
    first, second, code = two_processors(pdb)
    purchase = Event(id="p1", type="purchase", member="ann", at=AT, amount=Decimal(100),
                     coupon=code)  # fmt: skip
    answers = race(pdb, lambda: apply(first, purchase), lambda: apply(second, purchase))
    assert outcomes(answers) == ["duplicate", "processed"]
    after = books(pdb)
    assert after["transactions"] == [("earn", "points", 150, 0, "event:p1:points")]
    assert after["balances"] == [("available", 150), ("debt", 0), ("pending", 0)]
    assert (after["events"], after["code"], after["purchases"]) == (
        [("p1", Decimal(0))], ("used", "p1"), 1,
    )  # fmt: skip
    assert_invariants(pdb, "shop")


def test_two_copies_of_another_event_type_apply_it_once(pdb: Database) -> None:
    first, second, _ = two_processors(pdb)
    review = Event(id="v1", type="review", member="ann", at=AT)
    answers = race(pdb, lambda: apply(first, review), lambda: apply(second, review))
    assert outcomes(answers) == ["duplicate", "processed"]
    after = books(pdb)
    assert after["transactions"] == [("earn", "points", 20, 0, "event:v1:points")]
    assert after["balances"] == [("available", 20), ("debt", 0), ("pending", 0)]
    assert (after["events"], after["purchases"]) == ([("v1", Decimal(0))], 0)
    assert_invariants(pdb, "shop")
