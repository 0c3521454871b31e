"""Webhook delivery log and replay over the live API, with a real receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fidelite.webhooks import DeliveryWorker
from fidelite.webhooks import subscriptions as subs
from tests.api.conftest import Live
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock

EVENT = {"id": "E1", "type": "purchase", "member": "ann", "amount": "12.00",
         "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip


def test_log_attempts_and_replay(live: Live) -> None:
    receiver = Receiver()
    try:
        sub = subs.add(live.db, "shop", receiver.url, ["points.earned"], allow_private=True)
        with live.client("integration") as c:
            assert c.post("/v1/events", json=EVENT).status_code in (200, 201)
        receiver.script.append(503)
        clock = Clock()
        worker = DeliveryWorker(live.db, allow_private=True, clock=clock)
        assert worker.run_once().failed == 1
        with live.client("admin") as c:
            (entry,) = c.get("/v1/webhooks/deliveries", params={"state": "failed"}).json()[
                "deliveries"
            ]
            assert (entry["subscription_id"], entry["event_type"], entry["last_status"]) == (
                sub.id, "points.earned", 503,
            )  # fmt: skip
            tries = c.get(f"/v1/webhooks/deliveries/{entry['id']}/attempts").json()["attempts"]
            assert [(t["number"], t["status"], t["error"]) for t in tries] == [(1, 503, "HTTP 503")]
            replayed = c.post(f"/v1/webhooks/deliveries/{entry['id']}:replay",
                              headers={"Idempotency-Key": "replay-1"})  # fmt: skip
            assert replayed.status_code == 200 and replayed.json()["state"] == "pending"
        # the replay is due at the server's real now; the worker's clock is moved past it
        clock.now = datetime.now(UTC) + timedelta(minutes=1)
        assert worker.run_once().delivered == 1
        with live.client("admin") as c:
            done = c.get("/v1/webhooks/deliveries").json()["deliveries"]
            assert [d["state"] for d in done] == ["delivered"]
            missing = c.post("/v1/webhooks/deliveries/999:replay")
            assert (missing.status_code, missing.json()["code"]) == (404, "unknown_delivery")
            bad = c.get("/v1/webhooks/deliveries", params={"state": "lost"})
            assert bad.status_code == 422 and "state" in bad.text
        assert len(receiver.requests) == 2
        worker.close()
    finally:
        receiver.close()
