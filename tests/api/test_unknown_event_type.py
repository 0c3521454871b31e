"""A mistyped event type over real HTTP (SQLite file and PostgreSQL): 422
``unknown_event_type`` naming the type and the types the program handles, nothing
written, and the event id free for the real event; in a batch, rejected in place."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Live

AT = "2026-11-20T10:00:00+01:00"
PROBLEM = {
    "type": "https://fidelite.dev/problems/unknown_event_type", "title": "unknown event type",
    "status": 422, "code": "unknown_event_type",
    "detail": "unknown event type 'purchse' (did you mean 'purchase'?): this program handles "
    "purchase, refund, birthday, profile_completed, review, signup, social; a type to record "
    "without points is listed under 'events' in the program file",
}  # fmt: skip


def sent(event_id: str, kind: str, amount: str = "50") -> dict[str, Any]:
    return {"id": event_id, "type": kind, "member": "API-0001", "at": AT, "amount": amount}


def test_a_mistyped_event_is_refused_and_its_id_stays_free(live: Live) -> None:
    with live.client("integration") as c:
        refused = c.post("/v1/events", json=sent("typo-2", "purchse"))
        assert (refused.status_code, refused.json()) == (422, PROBLEM)
        assert refused.headers["content-type"] == "application/problem+json"
        assert live.ledger_rows() == 0
        assert c.get("/v1/events/typo-2").status_code == 404
        assert c.get("/v1/members/API-0001").status_code == 404
        again = c.post("/v1/events", json=sent("typo-2", "purchase"))
        assert (again.status_code, again.json()["outcome"]) == (201, "processed")
        assert again.json()["points"] == {"points": 50}


def test_a_batch_rejects_the_mistyped_event_in_place(live: Live) -> None:
    with live.client("integration") as c:
        out = c.post("/v1/events:batch", json={"events": [
            sent("b1", "purchase", "10"), sent("b2", "purchse"), sent("b3", "purchase", "5"),
        ]})  # fmt: skip
        assert out.status_code == 200
        results = out.json()["results"]
        assert [r["outcome"] for r in results] == ["processed", "rejected", "processed"]
        assert results[1] == {"event_id": "b2", "outcome": "rejected", "problem": PROBLEM}
        assert c.get("/v1/events/b2").status_code == 404
        balance = c.get("/v1/members/API-0001/balance").json()["balances"][0]
        assert balance["available"] == 15
