"""What the API answers (problem+json) for an event of an erased member's history and for
a redemption short of points that lapsed. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from fidelite.api import Settings, create_app
from fidelite.api.keys import create_key
from fidelite.privacy import erase_member
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_erased_events import snapshot

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
PROBLEM = "application/problem+json"


@pytest.fixture
def client(pdb: Database) -> Iterator[TestClient]:
    token = create_key(pdb, "shop", "admin")[1]
    app = create_app(pdb.url, parse_program(PROGRAM), Settings())
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def purchase(event_id: str, member: str, when: str, amount: str) -> dict[str, str]:
    return {"id": event_id, "type": "purchase", "member": member, "at": when, "amount": amount}


def test_event_of_an_erased_history_is_a_422_problem(pdb: Database, client: TestClient) -> None:
    made = client.post("/v1/events", json=purchase("e1", "ann", "2026-11-02T10:00:00Z", "50"))
    assert made.status_code == 201
    with pdb.write() as conn:
        erase_member(conn, "shop", "ann", reason="request",
                     at=datetime.fromisoformat("2026-11-20T09:00:00+00:00"))  # fmt: skip
    before = snapshot(pdb)
    late = client.post("/v1/events", json=purchase("e2", "ann", "2026-11-10T10:00:00Z", "20"))
    assert (late.status_code, late.headers["content-type"]) == (422, PROBLEM)
    assert late.json() == {
        "type": "https://fidelite.dev/problems/member_erased", "title": "member erased",
        "status": 422, "code": "member_erased",
        "detail": "the member 'ann' was erased on 2026-11-20: an event dated at or before the "
        "erasure belongs to the erased history and is not recorded (an event after it enrols "
        "the reference as a new member)",
    }  # fmt: skip
    assert snapshot(pdb) == before
    batch = client.post("/v1/events:batch", json={"events": [
        purchase("e3", "ann", "2026-11-19T10:00:00Z", "20"),
        purchase("e4", "ann", "2026-11-21T10:00:00Z", "20"),
    ]})  # fmt: skip
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert [r["outcome"] for r in results] == ["rejected", "processed"]
    assert (results[0]["problem"]["status"], results[0]["problem"]["code"]) == (
        422, "member_erased",
    )  # fmt: skip
    assert client.get("/v1/members/ann").json()["joined_at"] == "2026-11-21T10:00:00Z"


def test_redemption_short_of_lapsed_points_names_them(pdb: Database, client: TestClient) -> None:
    made = client.post("/v1/events", json=purchase("e1", "ann", "2026-01-05T10:00:00Z", "120"))
    assert made.status_code == 201
    before = snapshot(pdb)
    poor = client.post("/v1/redemptions", json={"member": "ann", "reward": "coffee"},
                       headers={"Idempotency-Key": "r1"})  # fmt: skip
    assert (poor.status_code, poor.headers["content-type"]) == (422, PROBLEM)
    body = poor.json()
    assert {k: body[k] for k in ("code", "available", "requested", "lapsed", "lapsed_at")} == {
        "code": "insufficient_points", "available": 0, "requested": 30, "lapsed": 120,
        "lapsed_at": "2026-02-05T10:00:00+00:00",
    }  # fmt: skip
    assert body["detail"].startswith("cannot redeem 'coffee': member 'ann' has 0 points")
    after = snapshot(pdb)
    assert {k: v for k, v in after.items() if k != "api_requests"} == {
        k: v for k, v in before.items() if k != "api_requests"
    }
