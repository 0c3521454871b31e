"""Idempotency-Keys are per program, shared by all its API keys (docs/api.md, Retries):
a key one till used is taken for the others; a retry may come with another API key."""

from __future__ import annotations

import httpx

from fidelite.api.keys import create_key, revoke_key
from tests.api.conftest import Live


def purchase(event_id: str) -> dict[str, str]:
    return {"id": event_id, "type": "purchase", "member": "ann", "amount": "30",
            "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip


def till(live: Live, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"})


def test_an_idempotency_key_is_shared_by_the_programs_api_keys(live: Live) -> None:
    key_a, token_a = create_key(live.db, "shop", "integration", "till A")
    token_b = create_key(live.db, "shop", "integration", "till B")[1]
    with till(live, token_a) as a:
        first = a.post("/v1/events", json=purchase("a-1"), headers={"Idempotency-Key": "1"})
        assert first.status_code == 201
    with till(live, token_b) as b:
        # another till counting from 1: its own event is refused, not applied
        other = b.post("/v1/events", json=purchase("b-1"), headers={"Idempotency-Key": "1"})
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert b.get("/v1/events/b-1").status_code == 404
        # the same request under the key: the first till's answer, nothing done again
        same = b.post("/v1/events", json=purchase("a-1"), headers={"Idempotency-Key": "1"})
        assert (same.status_code, same.json()) == (201, first.json())
        assert same.headers["idempotent-replayed"] == "true"
    assert live.ledger_rows() == 1
    # till A's key rotated between the attempt and the retry: the retry gets its answer
    revoke_key(live.db, key_a.key_id)
    token_c = create_key(live.db, "shop", "integration", "till A, new key")[1]
    with till(live, token_a) as old, till(live, token_c) as new:
        assert old.post("/v1/events", json=purchase("a-1")).status_code == 401
        again = new.post("/v1/events", json=purchase("a-1"), headers={"Idempotency-Key": "1"})
        assert (again.status_code, again.json()) == (201, first.json())
    assert live.ledger_rows() == 1
