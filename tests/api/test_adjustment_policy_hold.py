"""An API adjustment never holds points, so a credit the program's ``after_earning``
policy dates can never be held past that date: neither the single nor the bulk body
takes ``pending_until`` (422 ``invalid_request``, nothing credited, nothing stored under
the Idempotency-Key); the same bodies without it credit the policy's date. On a SQLite
file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from fidelite.api.keys import create_key
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction, Lot
from tests.api.conftest import start_server
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: after_earning, months: 1, rounding: end_of_month}
"""


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Database, str]]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=PROGRAM)
    yield url, db, create_key(db, "shop", "admin")[1]
    server.stop()
    db.dispose()


def state(db: Database) -> tuple[int, list[tuple[int, datetime | None]], list[str]]:
    with db.read() as conn:
        moves = len(conn.execute(select(LedgerTransaction.id)).all())
        rows = conn.execute(select(Lot.points, Lot.pending_until).order_by(Lot.id)).all()
        keys = conn.execute(text("SELECT idem_key FROM api_requests ORDER BY idem_key")).all()
    return moves, [(int(p), h) for p, h in rows], [str(k) for (k,) in keys]


def test_adjustment_bodies_take_no_hold(shop: tuple[str, Database, str]) -> None:
    url, db, token = shop
    held = {"points": 100, "reason": "outage", "pending_until": "2099-03-01T00:00:00+01:00"}
    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as c:  # fmt: skip
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        before = state(db)
        one = c.post("/v1/members/ann/adjustments", json=held, headers={"Idempotency-Key": "a1"})
        bulk = c.post("/v1/adjustments:bulk", json={**held, "members": ["ann"]},
                      headers={"Idempotency-Key": "b1"})  # fmt: skip
        after = state(db)
        plain = {"points": 100, "reason": "outage"}
        done = c.post("/v1/members/ann/adjustments", json=plain, headers={"Idempotency-Key": "a1"})
        many = c.post("/v1/adjustments:bulk", json={**plain, "members": ["ann"]},
                      headers={"Idempotency-Key": "b1"})  # fmt: skip
    for refused in (one, bulk):
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")
        assert "pending_until" in refused.json()["detail"]
    assert before == after == (0, [], [])
    assert (done.status_code, many.status_code, many.json()["credited"]) == (201, 200, 1)
    assert state(db) == (2, [(100, None), (100, None)], ["a1", "b1"])
    with db.read() as conn:
        dates = conn.execute(select(Lot.expires_at)).scalars().all()
    assert all(d is not None and d > datetime.now(UTC) for d in dates)
