"""An event dated in the future over real HTTP (SQLite file and PostgreSQL): 422
``event_in_future`` as problem+json with the figures, nothing written, in a batch
rejected in place, and not stored under its Idempotency-Key (the retry with the real
date is applied)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.api.conftest import Live


def test_the_api_answers_422_and_keeps_the_key_free(live: Live, processing_clock: datetime) -> None:
    """The tests' API processes at the fixed test clock (tests/conftest.py)."""
    at = processing_clock + timedelta(minutes=5, seconds=1)
    body = {"id": "f1", "type": "purchase", "member": "API-1", "at": at.isoformat(),
            "amount": "5000"}  # fmt: skip
    with live.client("integration") as c:
        refused = c.post("/v1/events", json=body, headers={"Idempotency-Key": "k1"})
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert (problem["code"], problem["at"], problem["processed_at"],
                problem["tolerance_minutes"]) == (
            "event_in_future", "2031-01-01T00:05:01Z", "2031-01-01T00:00:00Z", 5)  # fmt: skip
        assert live.ledger_rows() == 0
        assert c.get("/v1/events/f1").status_code == 404
        batch = c.post("/v1/events:batch", json={"events": [body]}).json()["results"]
        assert (batch[0]["outcome"], batch[0]["problem"]["code"]) == ("rejected", "event_in_future")
        fixed = {**body, "at": (at - timedelta(seconds=1)).isoformat(), "amount": "50"}
        applied = c.post("/v1/events", json=fixed, headers={"Idempotency-Key": "k1"})
        assert (applied.status_code, applied.json()["outcome"]) == (201, "processed")
    assert live.ledger_rows() == 1
