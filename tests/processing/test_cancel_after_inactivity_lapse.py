"""Cancelling a redemption under an inactivity policy after the member's points lapsed:
the points go back to lots that lapsed, so they expire at once in the cancellation's
transaction (recorded as expired, not spendable), and every answer says so. On a
SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select, text

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.tables import outbox

PROGRAM = """\
id: shop
name: Shop
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: coffee, name: Coffee, kind: free_product, sku: ESP, cost: 10}
expiry: {mode: inactivity, months: 1, warn_days: 7}
"""
EARNED = datetime(2025, 1, 10, 10, tzinfo=UTC)
REDEEMED = datetime(2025, 1, 20, 10, tzinfo=UTC)  # last activity: all lapse 20 Feb 10:00
LAPSED = datetime(2025, 2, 20, 10, tzinfo=UTC)
CANCELLED = datetime(2025, 3, 1, 10, tzinfo=UTC)


def setup(db: Database) -> tuple[EventProcessor, int]:
    program = parse_program(PROGRAM)
    p = EventProcessor(db, program, clock=lambda: CANCELLED)
    p.ledger.create_member("shop", "ann")
    p.ledger.earn("shop", "ann", "points", 100, key="e1", at=EARNED)
    return p, p.redeem("ann", "coffee", key="r1", at=REDEEMED).id


def available(p: EventProcessor, at: datetime) -> int:
    program = p.program
    return p.ledger.balance("shop", "ann", "points", as_of=at, policy=program.expiry,
                            zone=program.zone).available  # fmt: skip


def moves(db: Database) -> list[tuple[str, int, str | None, str | None]]:
    with db.read() as conn:
        rows = conn.execute(
            text("SELECT kind, points, occurred_at, detail FROM ledger_transactions ORDER BY id")
        ).all()
    found = []
    for kind, points, _, detail in rows:
        data = (json.loads(detail) if isinstance(detail, str) else detail) or {}
        found.append((str(kind), int(points), data.get("last_activity"), data.get("lapsed_at")))
    return found


def lots(db: Database) -> list[tuple[int, int, str]]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT points, remaining, state FROM lots ORDER BY id")).all()
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


def test_points_put_back_into_lapsed_lots_expire_with_the_cancellation(pdb: Database) -> None:
    p, rid = setup(pdb)
    assert available(p, CANCELLED) == 0  # lapsed on 20 February, before the cancellation
    done = p.cancel_redemption(rid, at=CANCELLED)
    assert done.returned is not None
    assert done.returned.as_dict() == {
        "points_spendable": 0, "points_expired": 10, "debt_repaid": 0,
        "written_off_restored": 0,
        "expired_lots": [{"expires_at": "2025-02-20T10:00:00+00:00", "points": 10}],
    }  # fmt: skip
    assert available(p, CANCELLED) == 0
    # the books agree: the lot's 90 left and the 10 back expired with the cancellation
    lapse = ("2025-01-20T10:00:00+00:00", "2025-02-20T10:00:00+00:00")
    assert moves(pdb) == [
        ("earn", 100, None, None),
        ("spend", 10, None, None),
        ("reverse", 10, None, None),
        ("expire", 100, *lapse),
    ]
    assert lots(pdb) == [(100, 0, "expired")]
    # every later answer says the same
    assert p.redemption(rid).returned == done.returned
    assert p.redemptions_of("ann")[0].returned == done.returned
    with pdb.read() as conn:
        payloads = conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "reward.cancelled")
        ).all()
    payload = dict(payloads[0][0])
    assert (payload["points_spendable"], payload["points_expired"]) == (0, 10)
    assert payload["expired_lots"] == [{"expires_at": "2025-02-20T10:00:00+00:00", "points": 10}]
    # the expiry job has nothing left to do, and a second cancellation changes nothing
    assert p.ledger.expire("shop", CANCELLED, policy=p.program.expiry,
                           zone=p.program.zone).transactions == 0  # fmt: skip
    assert p.cancel_redemption(rid, at=CANCELLED).returned == done.returned
    assert len(moves(pdb)) == 4
    assert_invariants(pdb)


def test_points_put_back_before_the_lapse_stay_spendable(pdb: Database) -> None:
    p, rid = setup(pdb)
    before = datetime(2025, 2, 1, 10, tzinfo=UTC)
    done = p.cancel_redemption(rid, at=before)
    assert done.returned is not None
    assert (done.returned.spendable, done.returned.expired, done.returned.expired_lots) == (
        10, 0, ()
    )  # fmt: skip
    assert available(p, before) == 100
    assert [m[0] for m in moves(pdb)] == ["earn", "spend", "reverse"]
    assert p.redemption(rid).returned == done.returned
