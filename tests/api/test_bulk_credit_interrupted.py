"""A bulk credit cut short by the server stopping (Ctrl-C) answers 503 problem+json
``bulk_interrupted``, telling the caller it may be partly applied and to send it again
with the SAME Idempotency-Key (the old answer was a plain-text 500 "Internal Server
Error", read as "failed", and support retried with a new key, crediting everyone twice).
Sent again with the same key once the server is back, every member ends credited
exactly once. On a SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from fidelite.api.keys import create_key
from fidelite.ledger import Ledger, assert_invariants
from fidelite.ledger.batch import enrol_many
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction
from tests.api.conftest import start_server
from tests.conftest import BACKENDS, make_database

MEMBERS = [f"m{i:05d}" for i in range(3000)]


def credits(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(LedgerTransaction)).scalar_one())


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_interrupted_bulk_credit_says_to_retry_with_the_same_key(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = make_database(backend, request, tmp_path)
    ledger = Ledger(db)
    ledger.open_program("shop", ["points"])
    with db.write() as conn:
        enrol_many(conn, "shop", MEMBERS, datetime.now(UTC))
    token = create_key(db, "shop", "admin")[1]
    server, url = start_server(db)
    body = {"points": 25, "reason": "outage goodwill", "members": MEMBERS}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "outage-1"}
    answer: dict[str, Any] = {}

    def send() -> None:
        answer["r"] = httpx.post(f"{url}/v1/adjustments:bulk", json=body, headers=headers,
                                 timeout=120)  # fmt: skip

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while credits(db) == 0 and time.monotonic() < deadline:  # the first chunk is in
        time.sleep(0.05)
    server.server.should_exit = server.server.force_exit = True  # Ctrl-C, twice
    sender.join(timeout=60)
    server.thread.join(timeout=120)
    r = answer["r"]
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert (problem["code"], problem["status"]) == ("bulk_interrupted", 503)
    assert "SAME Idempotency-Key" in problem["detail"] and "partly applied" in problem["detail"]
    # the worker thread goes on (the test process stands in for the server's)
    end = time.monotonic() + 300
    while credits(db) < len(MEMBERS) and time.monotonic() < end:
        time.sleep(0.2)
    # back up, sent again with the same key (after "in flight", as the problem says, until
    # the first run has stored its answer): each member credited exactly once
    server, url = start_server(db)
    try:
        for _ in range(600):
            again = httpx.post(f"{url}/v1/adjustments:bulk", json=body, headers=headers,
                               timeout=300)  # fmt: skip
            if again.status_code != 409:
                break
            time.sleep(0.5)
    finally:
        server.stop()
    assert again.status_code == 200, again.text
    assert (again.json()["credited"], again.json()["refused"]) == (3000, 0)
    with db.read() as conn:
        balances = conn.execute(text(
            "SELECT a.balance, count(*) FROM accounts a WHERE a.kind = 'available' "
            "AND a.member_id IS NOT NULL GROUP BY a.balance")).all()  # fmt: skip
    assert [(int(b), int(n)) for b, n in balances] == [(25, 3000)]
    assert credits(db) == 3000
    assert_invariants(db)
    db.dispose()
