"""A refund sent twice at the same time to two server processes (one copy under an
Idempotency-Key, the other with none; the same event id): one is applied (201), the
other is answered exactly as the event id sent again later is answered (200
``duplicate`` with what the refund got), never refused as an over-refund. On PostgreSQL
a session holds the member's row lock until both servers wait on it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import text

from fidelite.ledger import assert_invariants
from tests.api.conftest import Live, start_server
from tests.support import waits_on_a_row_lock

REFUND = {"id": "r1", "type": "refund", "member": "ann", "at": "2026-03-02T10:00:00+01:00",
          "amount": "100", "refund_of": "p1"}  # fmt: skip


def _post(url: str, token: str, key: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} | ({"Idempotency-Key": key} if key else {})
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        reply = client.post("/v1/events", json=REFUND)
    return reply.status_code, reply.json()


def _ledger(live: Live) -> list[tuple[Any, ...]]:
    with live.db.read() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT kind, points, reversed_points, idempotency_key FROM ledger_transactions "
            "ORDER BY id"))]  # fmt: skip


def test_two_copies_of_a_refund_on_two_servers_apply_it_once(live: Live) -> None:
    other, other_url = start_server(live.db)
    try:
        with live.client("admin") as c:
            assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
            bought = c.post("/v1/events", json={"id": "p1", "type": "purchase", "member": "ann",
                            "at": "2026-03-01T10:00:00+01:00", "amount": "100"})  # fmt: skip
            assert bought.status_code == 201
        token = live.tokens["admin"]
        holder = live.db.writer.connect() if live.db.is_postgres else None
        if holder is not None:
            holder.execute(text("SELECT id FROM members WHERE ref = 'ann' FOR UPDATE"))
        with ThreadPoolExecutor(max_workers=2) as pool:
            try:
                sent = [pool.submit(_post, live.url, token, "copy-a"),
                        pool.submit(_post, other_url, token, None)]  # fmt: skip
                if holder is not None:
                    assert waits_on_a_row_lock(holder, 2)
            finally:
                if holder is not None:
                    holder.rollback()
                    holder.close()
            answers = sorted((f.result(timeout=60) for f in sent), key=lambda a: a[0])
        after = _ledger(live)
        later = _post(other_url, token, "copy-c")  # the same event id, sent once it is done
    finally:
        other.stop()
    applied = answers[1]
    assert applied[0] == 201 and applied[1]["outcome"] == "processed"
    assert applied[1]["points"] == {"points": -100}
    assert later[0] == 200 and later[1]["outcome"] == "duplicate"
    assert later[1]["points"] == {"points": -100}
    assert answers[0] == later  # the concurrent copy: answered as the later one
    assert after == [("earn", 100, 100, "event:p1:points"), ("reverse", 100, 0, "refund:r1:1")]
    assert _ledger(live) == after
    with live.client("admin") as c:
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
    assert (balance["available"], balance["debt"]) == (0, 0)
    assert_invariants(live.db, "shop")
