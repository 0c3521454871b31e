"""Idempotency-Key over HTTP: replay, reuse with another body, in flight; limits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from fidelite.api import Settings
from fidelite.api.keys import create_key
from fidelite.api.tables import api_requests
from fidelite.engine import Event
from fidelite.store import Database
from tests.api.conftest import Live, start_server

EVENT = {
    "id": "e1",
    "type": "purchase",
    "member": "ann",
    "amount": "30",
    "at": "2026-11-20T10:00:00+01:00",
}


def test_retry_replays_the_first_response(live: Live) -> None:
    with live.client("integration") as c:
        first = c.post("/v1/events", json=EVENT, headers={"Idempotency-Key": "k1"})
        rows = live.ledger_rows()
        again = c.post("/v1/events", json=EVENT, headers={"Idempotency-Key": "k1"})
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        assert again.headers["idempotent-replayed"] == "true"
        assert live.ledger_rows() == rows


def test_event_answer_is_stored_with_the_event(live: Live) -> None:
    """POST /v1/events stores its response in the event's own transaction: the stored
    row is the answer sent, for a processed event and for a refused one."""
    refund = {**EVENT, "id": "r1", "type": "refund", "refund_of": "nope", "amount": "5"}
    with live.client("integration") as c:
        made = c.post("/v1/events", json=EVENT, headers={"Idempotency-Key": "k1"})
        refused = c.post("/v1/events", json=refund, headers={"Idempotency-Key": "k2"})
        assert (made.status_code, refused.status_code) == (201, 404)
        with live.db.read() as conn:
            stored = {r.idem_key: r for r in conn.execute(select(api_requests))}
        assert {k: (r.state, r.status_code, r.body) for k, r in stored.items()} == {
            "k1": ("done", 201, made.json()),
            "k2": ("done", 404, refused.json()),
        }
        again = c.post("/v1/events", json=refund, headers={"Idempotency-Key": "k2"})
        assert (again.status_code, again.json()) == (404, refused.json())
        assert again.headers["idempotent-replayed"] == "true"


def test_rejection_is_replayed_too(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann"})
        body = {"member": "ann", "reward": "mug"}
        poor = c.post("/v1/redemptions", json=body, headers={"Idempotency-Key": "r"})
        assert poor.json()["code"] == "insufficient_points"
        c.post(
            "/v1/members/ann/adjustments",
            json={"points": 500, "reason": "x"},
            headers={"Idempotency-Key": "a"},
        )
        again = c.post("/v1/redemptions", json=body, headers={"Idempotency-Key": "r"})
        assert (again.status_code, again.json()["code"]) == (422, "insufficient_points")
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 500


def test_same_key_other_body_is_refused_and_changes_nothing(live: Live) -> None:
    with live.client("integration") as c:
        c.post("/v1/events", json=EVENT, headers={"Idempotency-Key": "k1"})
        rows = live.ledger_rows()
        other = c.post("/v1/events", json={**EVENT, "id": "e2"}, headers={"Idempotency-Key": "k1"})
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert live.ledger_rows() == rows


def test_same_key_in_flight_is_409(live: Live) -> None:
    now = datetime.now(UTC)
    with live.db.write() as conn:
        from fidelite.api.idempotency import request_hash

        conn.execute(
            insert(api_requests),
            {
                "program_id": "shop",
                "idem_key": "busy",
                "route": "POST /v1/events",
                "request_hash": request_hash(
                    "POST /v1/events", Event.model_validate(EVENT).model_dump(mode="json")
                ),
                "state": "in_flight",
                "created_at": now,
                "updated_at": now,
            },
        )
    with live.client("integration") as c:
        busy = c.post("/v1/events", json=EVENT, headers={"Idempotency-Key": "busy"})
        assert (busy.status_code, busy.json()["code"]) == (409, "request_in_flight")
        assert live.ledger_rows() == 0


def test_body_size_and_rate_limits(tmp_path: object, sqlite_template: object) -> None:
    import shutil
    from pathlib import Path

    import httpx

    path = Path(str(tmp_path)) / "limits.db"
    shutil.copy(str(sqlite_template), path)
    db = Database(f"sqlite:///{path}")
    # One token per 100 s: no token comes back during the test, however slow the machine.
    limits = Settings(max_body_bytes=2000, rate_per_second=0.01, rate_burst=2)
    server, url = start_server(db, limits)
    token = create_key(db, "shop", "integration")[1]
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            big = c.post("/v1/members", json={"id": "x" * 100, "attributes": {"a": "y" * 5000}})
            assert (big.status_code, big.json()["code"]) == (413, "payload_too_large")
            codes = [
                c.post("/v1/events", json={**EVENT, "id": f"r{i}"}).status_code for i in range(3)
            ]
            assert codes == [201, 201, 429]
            limited = c.post("/v1/events", json={**EVENT, "id": "r9"})
            assert limited.status_code == 429 and 90 <= int(limited.headers["retry-after"]) <= 101
        other = create_key(db, "shop", "integration")[1]
        batch = {"events": [{**EVENT, "id": f"b{i}"} for i in range(2)]}
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {other}"}) as c:
            # a batch costs its events: a full bucket here (tests/api/test_batch_rate_limit.py)
            assert c.post("/v1/events:batch", json=batch).status_code == 200
            assert c.post("/v1/events:batch", json=batch).status_code == 429
    finally:
        server.stop()
        db.dispose()
