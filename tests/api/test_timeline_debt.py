"""The 360° timeline shows what each points movement really did: the transaction's own
points, signed, and how it split between the member's available, pending and debt
accounts. A full refund of a purchase whose points were partly spent reversed all its
points (some from the balance, the rest into debt); the timeline used to show only the
part taken from the balance, and a cancellation that repaid the debt as 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fidelite.api.keys import create_key
from tests.api.conftest import Live, start_server
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: voucher, name: Five euros off, kind: discount_amount, value: 5, cost: 500}
refunds:
  shortfall: debt
"""


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=PROGRAM)
    yield Live(url, db, {"admin": create_key(db, "shop", "admin")[1]})
    server.stop()
    db.dispose()


def movement(points: int, moved: int, available: int, debt: int) -> dict[str, int]:
    return {"points": points, "transaction_points": moved, "available_change": available,
            "pending_change": 0, "debt_change": debt}  # fmt: skip


def test_a_refund_into_debt_and_the_cancellation_that_repays_it(live: Live) -> None:
    with live.client("admin") as c:
        bought = c.post("/v1/events", json={
            "id": "b1", "type": "purchase", "member": "ann", "amount": "800.00",
            "at": "2026-11-01T10:00:00+01:00"})  # fmt: skip
        redeemed = c.post("/v1/redemptions", json={"member": "ann", "reward": "voucher"},
                          headers={"Idempotency-Key": "red-1"})  # fmt: skip
        refunded = c.post("/v1/events", json={
            "id": "rb1", "type": "refund", "member": "ann", "amount": "800.00",
            "refund_of": "b1", "at": "2026-12-06T12:00:00+01:00"})  # fmt: skip
        assert (bought.status_code, redeemed.status_code, refunded.status_code) == (201,) * 3
        owed = c.get("/v1/members/ann/balance").json()["balances"][0]
        cancel = c.post(f"/v1/redemptions/{redeemed.json()['id']}:cancel")
        assert cancel.status_code == 200
        settled = c.get("/v1/members/ann/balance").json()["balances"][0]
        timeline = c.get("/v1/members/ann/timeline").json()["timeline"]
        ledger = c.get("/v1/members/ann/ledger").json()["entries"]
    assert (owed["available"], owed["debt"]) == (0, 500)
    assert (settled["available"], settled["debt"]) == (0, 0)
    by_id = {m["transaction_id"]: m for m in timeline}
    # the ledger history, most recently recorded first: cancellation, refund, spend, earn
    cancelled, reversed_, spent, earned = (e["transaction_id"] for e in ledger)
    split = {tid: {k: m[k] for k in movement(0, 0, 0, 0)} for tid, m in by_id.items()}
    assert split == {
        earned: movement(800, 800, 800, 0),
        spent: movement(-500, -500, -500, 0),
        reversed_: movement(-300, -800, -300, -500),  # 300 from the balance, 500 owed
        cancelled: movement(0, 500, 0, 500),  # the 500 points came back as debt repaid
    }
    assert [(by_id[t]["kind"], by_id[t]["source"]) for t in (earned, spent, reversed_)] == [
        ("points.earn", "b1"), ("points.spend", "voucher"), ("points.reverse", None),
    ]  # fmt: skip
    # the same split as the ledger history gives, transaction by transaction
    assert {e["transaction_id"]: (e["available_change"], e["pending_change"],
                                  e["debt_change"]) for e in ledger} == {
        tid: (m["available_change"], m["pending_change"], m["debt_change"])
        for tid, m in by_id.items()
    }  # fmt: skip


def test_the_schema_documents_the_split(live: Live) -> None:
    with live.client("admin") as c:
        doc: dict[str, Any] = c.get("/openapi.json").json()
    fields = doc["components"]["schemas"]["PointsMovement"]["properties"]
    assert set(fields) == {"at", "kind", "currency", "points", "reason", "source",
                           "transaction_id", "transaction_points", "available_change",
                           "pending_change", "debt_change"}  # fmt: skip
    assert fields["transaction_points"]["examples"] == [-800]
    assert "debt is not in it" in fields["points"]["description"]
    assert "-500 is 500 more points owed" in fields["debt_change"]["description"]
