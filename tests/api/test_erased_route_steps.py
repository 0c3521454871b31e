"""Erasure rewrites only the member's own step of a stored answer's route (after
``/members/``), never another step that happens to be spelled as the reference: erasing
a member ``v1`` leaves every other stored route (``POST /v1/events``) as it was, so
retries under those keys still replay. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from fidelite.store.answers import api_requests
from tests.api.conftest import Live

AT = "2026-11-02T10:00:00Z"


def routes(live: Live) -> dict[str, str]:
    with live.db.read() as conn:
        rows = conn.execute(select(api_requests.c.idem_key, api_requests.c.route)).all()
    return {key: route for key, route in rows}


def test_only_the_member_step_of_a_route_is_rewritten(live: Live) -> None:
    event = {"id": "p1", "type": "purchase", "member": "ann", "at": AT, "amount": "20.00"}
    calls = [
        ("post", "/v1/members", {"id": "v1", "joined_at": AT}, "m-v1"),
        ("post", "/v1/members", {"id": "ann", "joined_at": AT}, "m-ann"),
        ("post", "/v1/events", event, "e-ann"),
        ("patch", "/v1/members/ann", {"segments": ["vip"]}, "p-ann"),
        ("post", "/v1/members/ann/adjustments", {"points": 5, "reason": "gift"}, "a-ann"),
        ("post", "/v1/members/v1/adjustments", {"points": 5, "reason": "gift"}, "a-v1"),
    ]
    with live.client() as client:
        first = {}
        for method, path, body, key in calls:
            answer = client.request(method, path, json=body, headers={"Idempotency-Key": key})
            assert answer.status_code in (200, 201), answer.text
            first[key] = answer
        erased = client.delete("/v1/members/v1")
        assert erased.status_code == 200, erased.text
        tombstone = erased.json()["tombstone"]
        stored = routes(live)
        assert {k: v for k, v in stored.items() if k in first} == {
            "m-v1": "POST /v1/members",
            "m-ann": "POST /v1/members",
            "e-ann": "POST /v1/events",
            "p-ann": "PATCH /v1/members/ann",
            "a-ann": "POST /v1/members/ann/adjustments",
            "a-v1": f"POST /v1/members/{tombstone}/adjustments",
        }
        for method, path, body, key in calls[
            1:5
        ]:  # ann's calls replay as answered (marked replayed)
            again = client.request(method, path, json=body, headers={"Idempotency-Key": key})
            assert again.status_code == first[key].status_code, again.text
            assert {**again.json(), "replayed": None} == {**first[key].json(), "replayed": None}
