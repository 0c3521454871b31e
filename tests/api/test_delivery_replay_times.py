"""POST /v1/webhooks/deliveries/{id}:replay answers the delivery as the delivery log
writes it: the same fields, times in UTC with ``Z``, first time and on a retry."""

from __future__ import annotations

from fidelite.webhooks import DeliveryWorker
from fidelite.webhooks import subscriptions as subs
from tests.api.conftest import Live
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock

EVENT = {"id": "E1", "type": "purchase", "member": "ann", "amount": "12.00",
         "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip
TIMES = ("next_attempt_at", "last_attempt_at", "delivered_at", "created_at")


def test_a_replayed_delivery_reads_as_the_log_reads_it(live: Live) -> None:
    receiver = Receiver()
    try:
        subs.add(live.db, "shop", receiver.url, ["points.earned"], allow_private=True)
        with live.client("integration") as c:
            assert c.post("/v1/events", json=EVENT).status_code == 201
        receiver.script.append(503)
        worker = DeliveryWorker(live.db, allow_private=True, clock=Clock())
        assert worker.run_once().failed == 1
        worker.close()
        with live.client("admin") as c:
            (before,) = c.get("/v1/webhooks/deliveries").json()["deliveries"]
            key = {"Idempotency-Key": "replay-1"}
            answer = c.post(f"/v1/webhooks/deliveries/{before['id']}:replay", headers=key)
            assert answer.status_code == 200, answer.text
            replayed = answer.json()
            (logged,) = c.get("/v1/webhooks/deliveries").json()["deliveries"]
            assert replayed == logged
            assert replayed["state"] == "pending"
            assert (replayed["created_at"], replayed["last_attempt_at"]) == (
                before["created_at"], before["last_attempt_at"])  # fmt: skip
            for name in TIMES:
                value = replayed[name]
                assert value is None or (value.endswith("Z") and "+00:00" not in value), name
            again = c.post(f"/v1/webhooks/deliveries/{before['id']}:replay", headers=key)
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.json() == replayed
    finally:
        receiver.close()
