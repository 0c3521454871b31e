"""Redeeming under an inactivity policy before the expiry job has run: points that
lapsed cannot pay for a reward, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
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

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: coffee, name: Coffee, kind: free_product, sku: ESP, cost: 30}
expiry: {mode: inactivity, months: 1}
"""
DEADLINE = "2026-02-05T10:00:00+00:00"  # a month after the purchases of 5 January


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def purchase(p: EventProcessor, event_id: str, member: str, when: str, amount: str) -> None:
    p.process(Event(id=event_id, type="purchase", member=member, at=at(when),
                    amount=Decimal(amount)))  # fmt: skip


def setup(db: Database) -> EventProcessor:
    p = EventProcessor(db, parse_program(PROGRAM))
    for member in ("ann", "bob"):
        purchase(p, f"p-{member}", member, "2026-01-05T10:00:00+00:00", "120")
    return p


def everything(db: Database) -> tuple[Any, ...]:
    """The ledger, the redemptions and the webhook outbox: what a redemption writes."""
    with db.read() as conn:
        rows = tuple(
            tuple(tuple(r) for r in conn.execute(text(sql)).all())
            for sql in ("SELECT * FROM redemptions ORDER BY id", "SELECT * FROM outbox ORDER BY id")
        )
    return (snapshot(db), rows)


def expire(p: EventProcessor, as_of: str) -> tuple[int, int, dict[str, int]]:
    report = p.ledger.expire("shop", as_of, policy=p.program.expiry, zone=p.program.zone)
    return (report.transactions, report.lots, report.points)


def available(p: EventProcessor, member: str, as_of: str) -> int:
    return p.ledger.balance("shop", member, "points", as_of=as_of, policy=p.program.expiry,
                            zone=p.program.zone).available  # fmt: skip


def test_redeem_with_lapsed_points_before_the_job_is_refused(pdb: Database) -> None:
    p = setup(pdb)
    before = everything(pdb)
    with pytest.raises(ProcessingError) as caught:
        p.redeem("ann", "coffee", key="r1", at=at(DEADLINE))
    assert caught.value.code == "insufficient_points"
    assert everything(pdb) == before
    # bob redeems an instant before the deadline: allowed, and it is activity
    done = p.redeem("bob", "coffee", key="r2", at=at("2026-02-05T09:59:59+00:00"))
    assert (done.points, done.status) == (30, "active")
    assert (available(p, "ann", DEADLINE), available(p, "bob", DEADLINE)) == (0, 90)
    # the job later expires ann's points once, and none of bob's
    assert expire(p, DEADLINE) == (1, 1, {"points": 120})
    assert expire(p, DEADLINE) == (0, 0, {})
    assert expire(p, "2026-03-05T09:59:58+00:00") == (0, 0, {})
    assert expire(p, "2026-03-05T09:59:59+00:00") == (1, 1, {"points": 90})
    assert_invariants(pdb)


def test_redeem_after_coming_back_spends_only_the_new_points(pdb: Database) -> None:
    p = setup(pdb)
    purchase(p, "p-ann-2", "ann", "2026-02-10T10:00:00+00:00", "40")  # too late for the 120
    assert available(p, "ann", "2026-02-11T10:00:00+00:00") == 40
    done = p.redeem("ann", "coffee", key="r1", at=at("2026-02-11T10:00:00+00:00"))
    assert done.points == 30
    assert available(p, "ann", "2026-02-11T10:00:00+00:00") == 10
    before = everything(pdb)
    with pytest.raises(ProcessingError) as caught:
        p.redeem("ann", "coffee", key="r2", at=at("2026-02-11T10:00:00+00:00"))
    assert caught.value.code == "insufficient_points"
    assert everything(pdb) == before
    # ann's 120 and bob's 120
    assert expire(p, "2026-02-11T10:00:00+00:00") == (2, 2, {"points": 240})
    assert expire(p, "2026-02-11T10:00:00+00:00") == (0, 0, {})
    assert available(p, "ann", "2026-02-11T10:00:00+00:00") == 10
    assert_invariants(pdb)
