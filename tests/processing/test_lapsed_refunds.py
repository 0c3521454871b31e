"""Under an inactivity policy, before the expiry job has run: a refund's clawback takes
no lapsed points (the shortfall is written off or owed), and a redemption refused for
want of points says what lapsed and when. On SQLite and PostgreSQL."""

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
refunds: {shortfall: %s}
"""


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def purchase(p: EventProcessor, event_id: str, when: str, amount: str) -> None:
    p.process(Event(id=event_id, type="purchase", member="ann", at=at(when),
                    amount=Decimal(amount)))  # fmt: skip


def spent_then_idle(db: Database, shortfall: str) -> EventProcessor:
    """ann buys (30 points) and redeems them, buys again (100 points) on 7 January, then
    nothing: the 100 lapse on 7 February."""
    p = EventProcessor(db, parse_program(PROGRAM % shortfall))
    purchase(p, "p1", "2026-01-05T10:00:00+00:00", "30")
    p.redeem("ann", "coffee", key="r1", at=at("2026-01-06T10:00:00+00:00"))
    purchase(p, "p2", "2026-01-07T10:00:00+00:00", "100")
    return p


def lots(db: Database) -> list[tuple[int, int, str]]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT points, remaining, state FROM lots ORDER BY id")).all()
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


def refund_p1(p: EventProcessor) -> dict[str, Any]:
    done = p.process(Event(id="r-p1", type="refund", member="ann",
                           at=at("2026-02-10T10:00:00+00:00"), amount=Decimal("30"),
                           refund_of="p1"))  # fmt: skip
    (receipt,) = done.receipts
    return {"points": receipt.points, "written_off": receipt.written_off,
            "debt_added": receipt.debt_added}  # fmt: skip


@pytest.mark.parametrize(("shortfall", "expected"), [
    ("within_balance", {"points": 30, "written_off": 30, "debt_added": 0}),
    ("debt", {"points": 30, "written_off": 0, "debt_added": 30}),
])  # fmt: skip
def test_refund_clawback_takes_no_lapsed_points(
    pdb: Database, shortfall: str, expected: dict[str, int]
) -> None:
    p = spent_then_idle(pdb, shortfall)
    assert refund_p1(p) == expected
    assert lots(pdb) == [(30, 0, "spent"), (100, 100, "available")]
    report = p.ledger.expire("shop", "2026-02-10T10:00:00+00:00", policy=p.program.expiry,
                             zone=p.program.zone)  # fmt: skip
    assert (report.transactions, report.points) == (1, {"points": 100})  # expired once, by the job
    assert_invariants(pdb, "shop")


def test_redemption_short_of_points_names_what_lapsed(pdb: Database) -> None:
    p = spent_then_idle(pdb, "within_balance")
    before = snapshot(pdb)
    with pytest.raises(ProcessingError) as caught:
        p.redeem("ann", "coffee", key="r2", at=at("2026-02-07T10:00:00+00:00"))
    assert snapshot(pdb) == before
    assert caught.value.code == "insufficient_points"
    assert caught.value.detail == {"available": 0, "requested": 30, "lapsed": 100,
                                   "lapsed_at": "2026-02-07T10:00:00+00:00"}  # fmt: skip
    assert caught.value.message == (
        "cannot redeem 'coffee': member 'ann' has 0 points available, 30 requested; 100 "
        "lapsed at 2026-02-07T10:00:00+00:00 after no activity since "
        "2026-01-07T10:00:00+00:00"
    )


def test_redemption_short_of_points_without_a_lapse(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM % "within_balance"))
    purchase(p, "p1", "2026-01-05T10:00:00+00:00", "20")
    before = snapshot(pdb)
    with pytest.raises(ProcessingError) as caught:
        p.redeem("ann", "coffee", key="r1", at=at("2026-01-06T10:00:00+00:00"))
    assert snapshot(pdb) == before
    assert (caught.value.code, caught.value.detail) == (
        "insufficient_points", {"available": 20, "requested": 30},
    )  # fmt: skip
    assert caught.value.message == (
        "cannot redeem 'coffee': member 'ann' has 20 points available, 30 requested"
    )
