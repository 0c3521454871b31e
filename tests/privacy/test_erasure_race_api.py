"""What the API answers, and stores under the Idempotency-Key, for an adjustment (one
member, or bulk) racing the member's erasure (PostgreSQL): the answer to the same
request sent after the erasure, ``404 unknown_member`` for the reference, replayed as
such on a retry; never ``422 member_erased`` naming the erased reference (that refusal
is for the tombstone). Deterministic: the test holds the member's lock, sends the
request from a thread, waits until it waits for the lock, erases, commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fidelite.api import Settings, create_app
from fidelite.api.keys import create_key
from fidelite.ledger import Ledger
from fidelite.privacy import erase_member
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.locking import lock_member
from tests.conftest import make_database
from tests.support import snapshot, waits_on_a_row_lock

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
ERASED_AT = datetime.fromisoformat("2026-11-20T09:00:00+00:00")
UNKNOWN = {
    "type": "https://fidelite.dev/problems/unknown_member", "title": "unknown member",
    "status": 404, "detail": "no member 'ann' in program 'shop'", "code": "unknown_member",
    "field": "member_ref",
}  # fmt: skip

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated PostgreSQL database: the race needs a server's row locks."""
    database = make_database("postgresql", request, tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def client(pg_only: Database) -> Iterator[TestClient]:
    token = create_key(pg_only, "shop", "admin")[1]
    app = create_app(pg_only.url, parse_program(PROGRAM), Settings())
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def race_erasure(db: Database, send: Callable[[], httpx.Response]) -> tuple[str, httpx.Response]:
    """Send a request while the erasure of ``ann`` holds her lock (see the module)."""
    member_id = Ledger(db).get_member("shop", "ann").member_id
    with ThreadPoolExecutor(max_workers=1) as pool:
        with db.write() as holder:
            lock_member(holder, member_id)
            pending = pool.submit(send)
            assert waits_on_a_row_lock(holder, 1), "the request never waited for the lock"
            tombstone = erase_member(holder, "shop", "ann", at=ERASED_AT).tombstone
        return tombstone, pending.result(timeout=30)


def _ann(client: TestClient) -> None:
    bought = {"id": "p1", "type": "purchase", "member": "ann", "at": "2026-11-02T10:00:00Z",
              "amount": "150"}  # fmt: skip
    made = client.post("/v1/events", json=bought)
    assert made.status_code == 201


ADJUST = ("/v1/members/ann/adjustments", {"points": 5, "reason": "goodwill"})
BULK = ("/v1/adjustments:bulk", {"members": ["ann"], "points": 2, "reason": "outage"})
EXPECTED: dict[str, tuple[int, Any]] = {
    ADJUST[0]: (404, UNKNOWN),
    BULK[0]: (200, {"credited": 0, "refused": 1,
                    "results": [{"member": "ann", "problem": UNKNOWN}]}),
}  # fmt: skip


@pytest.mark.parametrize("request_", [ADJUST, BULK], ids=["adjustment", "bulk"])
def test_an_adjustment_racing_the_erasure_is_unknown_member(
    pg_only: Database, client: TestClient, request_: tuple[str, dict[str, Any]]
) -> None:
    path, body = request_
    _ann(client)

    def send(key: str) -> httpx.Response:
        return client.post(path, json=body, headers={"Idempotency-Key": key})

    tombstone, raced = race_erasure(pg_only, lambda: send("k1"))
    assert (raced.status_code, raced.json()) == EXPECTED[path]
    after = snapshot(pg_only)
    retried = send("k1")  # the stored answer, replayed (an adjustment's route finds
    assert (retried.status_code, retried.json()) == EXPECTED[path]  # no member first)
    if path == BULK[0]:
        assert retried.headers.get("Idempotent-Replayed") == "true"
    later = send("k2")  # as the same request sent after the erasure
    assert (later.status_code, later.json()) == EXPECTED[path]
    balance = client.get(f"/v1/members/{tombstone}/balance").json()
    assert [b["available"] for b in balance["balances"]] == [150]
    assert snapshot(pg_only) == after  # nothing written
