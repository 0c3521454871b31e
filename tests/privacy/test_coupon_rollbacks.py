"""The single-use codes given back by full refunds of a member's purchases
(``coupon_rollbacks``) are in the member's export; erasure leaves them as they are (they
name no member: the purchase's event, moved to the tombstone, makes them the member's),
so the erased member's export still lists them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.ledger import check_invariants
from fidelite.privacy import erase_member, export_member
from fidelite.processing import EventProcessor
from fidelite.processing.tables import coupon_rollbacks
from fidelite.program import parse_program
from fidelite.store import Database
from tests.conftest import BACKENDS, make_database

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
REF = "ann-4711"


@pytest.fixture(params=BACKENDS)
def gdb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = make_database(request.param, request, tmp_path)
    yield database
    database.dispose()


def event(event_id: str, member: str, days: int, amount: str, **more: Any) -> Event:
    kind = "refund" if "refund_of" in more else "purchase"
    return Event(id=event_id, type=kind, member=member, at=AT + timedelta(days=days),
                 amount=Decimal(amount), **more)  # fmt: skip


def setup(db: Database) -> tuple[str, str, str]:
    """ann: p1 with her own code and p2 with a code shared by all, both refunded in
    full (r1 in two parts, r2a then r2b; r3); p4 with her second code, refunded in part
    only. bob: b1 with his code, refunded in full. Returns ann's code, the shared code
    and bob's code."""
    p = EventProcessor(db, parse_program(PROGRAM))
    for ref in (REF, "bob"):
        p.enrol(ref, at=AT)
    mine, second = p.issue_coupons("gift", 2, at=AT, member_ref=REF)
    (shared,) = p.issue_coupons("gift", 1, at=AT)
    (bobs,) = p.issue_coupons("gift", 1, at=AT, member_ref="bob")
    for e in (
        event("p1", REF, 0, "100", coupon=mine),
        event("p2", REF, 1, "30", coupon=shared),
        event("p4", REF, 1, "20", coupon=second),
        event("b1", "bob", 1, "10", coupon=bobs),
        event("r1a", REF, 2, "40", refund_of="p1"),
        event("r3", REF, 3, "30", refund_of="p2"),
        event("r1b", REF, 4, "60", refund_of="p1"),
        event("r4", REF, 4, "5", refund_of="p4"),
        event("rb", "bob", 5, "10", refund_of="b1"),
    ):
        p.process(e)
    return mine, shared, bobs


def export(db: Database, ref: str) -> dict[str, Any]:
    with db.read() as conn:
        return export_member(conn, "shop", ref)


def stored(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        return [tuple(r) for r in conn.execute(
            select(coupon_rollbacks).order_by(coupon_rollbacks.c.purchase_event_id))]  # fmt: skip


def without_clock(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        datetime.fromisoformat(row["recorded_at"])  # a time, set by the wall clock
    return [{**row, "recorded_at": "<wall clock>"} for row in rows]


def test_the_export_lists_the_codes_given_back_by_the_members_refunds(gdb: Database) -> None:
    mine, shared, bobs = setup(gdb)
    assert without_clock(export(gdb, REF)["coupon_rollbacks"]) == [
        {"purchase_event_id": "p2", "code": shared, "refund_event_id": "r3",
         "rolled_back_at": "2026-11-08T10:00:00+00:00", "recorded_at": "<wall clock>"},
        {"purchase_event_id": "p1", "code": mine, "refund_event_id": "r1b",
         "rolled_back_at": "2026-11-09T10:00:00+00:00", "recorded_at": "<wall clock>"},
    ]  # fmt: skip
    assert without_clock(export(gdb, "bob")["coupon_rollbacks"]) == [
        {"purchase_event_id": "b1", "code": bobs, "refund_event_id": "rb",
         "rolled_back_at": "2026-11-10T10:00:00+00:00", "recorded_at": "<wall clock>"},
    ]  # fmt: skip


def test_erasure_keeps_the_rollbacks_and_the_erased_export_lists_them(gdb: Database) -> None:
    setup(gdb)
    rows, listed = stored(gdb), export(gdb, REF)["coupon_rollbacks"]
    bobs = export(gdb, "bob")["coupon_rollbacks"]
    assert all(REF not in str(row) for row in rows)  # no column holds the reference
    with gdb.write() as conn:
        erased = erase_member(conn, "shop", REF, at=AT + timedelta(days=10))
    assert stored(gdb) == rows  # unchanged
    assert export(gdb, erased.tombstone)["coupon_rollbacks"] == listed
    assert export(gdb, "bob")["coupon_rollbacks"] == bobs
    assert check_invariants(gdb, "shop") == []
