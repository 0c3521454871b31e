"""POST /v1/webhooks under an Idempotency-Key: the stored answer has no secret; a retry
gets the subscription and its secret while it is active, ``409 subscription_removed``
once it was removed (as ``fidelite webhooks add --key`` does, docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fidelite.api.tables import api_requests
from fidelite.webhooks import subscriptions as subs
from tests.api.conftest import Live

HOOK = {"url": "https://93.184.216.34/hooks", "event_types": ["points.earned"]}
KEY = {"Idempotency-Key": "crm-hook-1"}


def stored(live: Live) -> list[tuple[str, int, Any]]:
    with live.db.read() as conn:
        rows = conn.execute(select(api_requests).order_by(api_requests.c.idem_key)).all()
    return [(r.idem_key, r.status_code, r.body) for r in rows]


def held(live: Live) -> list[dict[str, Any]]:
    return [s.as_dict() for s in subs.list_all(live.db, "shop", include_removed=True)]


def test_a_retry_gets_the_secret_while_active_and_is_refused_once_removed(live: Live) -> None:
    with live.client("admin") as c:
        first = c.post("/v1/webhooks", json=HOOK, headers=KEY)
        assert first.status_code == 201, first.text
        made = first.json()
        secret = made["secret"]
        assert made["active"] is True and secret.startswith("whsec_")
        assert "Idempotent-Replayed" not in first.headers
        # the stored answer keeps no secret
        ((key, status, body),) = stored(live)
        assert (key, status) == ("crm-hook-1", 201)
        assert body == {k: v for k, v in made.items() if k != "secret"}
        assert secret not in str(body)
        # a retry while active: the same subscription and secret, nothing added
        again = c.post("/v1/webhooks", json=HOOK, headers=KEY)
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
        assert again.json() == made
        assert [s["id"] for s in held(live)] == [made["id"]]
        gone = c.delete(f"/v1/webhooks/{made['id']}")
        assert (gone.status_code, gone.json()["active"]) == (200, False)
        before = (held(live), stored(live))
        late = c.post("/v1/webhooks", json=HOOK, headers=KEY)
        assert late.status_code == 409, late.text
        assert late.headers["content-type"] == "application/problem+json"
        assert late.json() == {
            "type": "https://fidelite.dev/problems/subscription_removed",
            "title": "subscription removed", "status": 409, "code": "subscription_removed",
            "detail": f"Idempotency-Key 'crm-hook-1' added subscription {made['id']}, "
                      "removed since: nothing is subscribed; use a new key to subscribe again",
            "field": "Idempotency-Key",
        }  # fmt: skip
        assert secret not in late.text
        assert (held(live), stored(live)) == before  # nothing subscribed again
        # a new key subscribes again
        fresh = c.post("/v1/webhooks", json=HOOK, headers={"Idempotency-Key": "crm-hook-2"})
        assert fresh.status_code == 201 and fresh.json()["id"] != made["id"]
        assert fresh.json()["secret"] != secret


def test_without_a_key_the_answer_carries_the_secret(live: Live) -> None:
    with live.client("admin") as c:
        made = c.post("/v1/webhooks", json=HOOK)
        assert made.status_code == 201, made.text
        assert made.json()["secret"].startswith("whsec_")
        assert stored(live) == []
