"""``coupon.restored``: the refund that completes a purchase's full refund gives its
single-use code back and announces it, in the same transaction, once per purchase;
never for a partial refund, a refund sent again, a rolled-back refund or an erased
member's purchase."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor, Outcome
from fidelite.processing.tables import coupons
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker
from fidelite.webhooks import subscriptions as subs
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, outbox_rows

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
AT = datetime.fromisoformat("2026-11-05T10:00:00+00:00")


def setup(db: Database) -> tuple[EventProcessor, str]:
    """ann bought p1 (100.00) with her code."""
    p = EventProcessor(db, parse_program(PROGRAM))
    p.enrol("ann", at=AT)
    (code,) = p.issue_coupons("gift", 1, at=AT, member_ref="ann")
    p.process(Event(id="p1", type="purchase", member="ann", at=AT, amount=Decimal(100),
                    coupon=code))  # fmt: skip
    return p, code


def refund(event_id: str, amount: str, days: int = 1) -> Event:
    return Event(id=event_id, type="refund", member="ann", at=AT + timedelta(days=days),
                 amount=Decimal(amount), refund_of="p1")  # fmt: skip


def restored(db: Database) -> list[dict[str, Any]]:
    return [r["payload"] for r in outbox_rows(db) if r["event_type"] == "coupon.restored"]


def code_row(db: Database) -> tuple[Any, ...]:
    with db.read() as conn:
        return tuple(conn.execute(select(coupons.c.status, coupons.c.used_event_id)).one())


def test_a_full_refund_announces_the_code_once_and_it_is_delivered_once(
    wdb: Database, receiver: Receiver
) -> None:
    subs.add(wdb, "shop", receiver.url, ["coupon.restored"], allow_private=True)
    p, code = setup(wdb)
    assert p.process(refund("r1", "100")).outcome is Outcome.processed
    payload = {"member": "ann", "code": code, "campaign": "gift", "event_id": "r1",
               "refund_of": "p1", "occurred_at": "2026-11-06T10:00:00+00:00"}  # fmt: skip
    assert restored(wdb) == [payload]
    assert p.process(refund("r1", "100")).outcome is Outcome.duplicate  # a retry
    assert restored(wdb) == [payload]
    worker = DeliveryWorker(wdb, allow_private=True, clock=Clock(), timeout=5)
    try:
        assert worker.run_once().delivered == 1
        assert worker.run_once().claimed == 0  # nothing sent twice
    finally:
        worker.close()
    (request,) = receiver.requests
    assert request.headers["Fidelite-Event-Type"] == "coupon.restored"
    document = json.loads(request.body)
    assert (document["type"], document["data"]) == ("coupon.restored", payload)


def test_a_partial_refund_announces_nothing_until_the_rest_is_refunded(wdb: Database) -> None:
    p, code = setup(wdb)
    p.process(refund("r1", "40"))
    assert restored(wdb) == []
    assert code_row(wdb) == ("used", "p1")
    p.process(refund("r2", "60", days=2))
    p.process(refund("r2", "60", days=2))  # sent again: a duplicate
    assert [(e["event_id"], e["code"]) for e in restored(wdb)] == [("r2", code)]
    assert code_row(wdb) == ("issued", None)


def test_a_refund_rolled_back_leaves_neither_the_code_nor_the_announcement(
    wdb: Database,
) -> None:
    p, _ = setup(wdb)
    before = outbox_rows(wdb)
    with pytest.raises(RuntimeError, match="the caller's transaction fails"), wdb.write() as conn:
        assert p.process(refund("r1", "100"), conn=conn).outcome is Outcome.processed
        raise RuntimeError("the caller's transaction fails")
    assert outbox_rows(wdb) == before
    assert code_row(wdb) == ("used", "p1")
    p.process(refund("r1", "100"))  # applied for real: announced once
    assert [e["event_id"] for e in restored(wdb)] == ["r1"]


def test_an_erased_members_refund_gives_the_code_back_silently(wdb: Database) -> None:
    p, _ = setup(wdb)
    with wdb.write() as conn:
        erase_member(conn, "shop", "ann", at=AT + timedelta(hours=1))
    p.process(refund("r1", "100"))
    assert code_row(wdb) == ("issued", None)
    assert restored(wdb) == []
