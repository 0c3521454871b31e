"""The member's export lists everything held about them, beyond their own rows: the
answers the API stored for retries that name them (a profile sent before a PATCH
changed it), the command line's stored answer of their enrolment, and each webhook
event's deliveries with their attempts. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from fidelite.ledger import Ledger
from fidelite.webhooks import DeliveryWorker
from fidelite.webhooks import subscriptions as subs
from tests.api.conftest import Live
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock

AT = "2026-11-02T10:00:00Z"
EVENT = {"id": "E1", "type": "purchase", "member": "ann", "amount": "12.00", "at": AT}


def test_the_export_holds_stored_answers_and_deliveries(live: Live) -> None:
    receiver = Receiver()
    try:
        sub = subs.add(live.db, "shop", receiver.url, ["points.earned"], allow_private=True)
        with live.client() as c:
            made = c.post("/v1/members", json={"id": "ann", "joined_at": AT,
                                               "attributes": {"email": "old@example.com"}},
                          headers={"Idempotency-Key": "m-ann"})  # fmt: skip
            assert made.status_code == 201, made.text
            patched = c.patch("/v1/members/ann",
                              json={"attributes": {"email": "new@example.com"}},
                              headers={"Idempotency-Key": "p-ann"})  # fmt: skip
            assert patched.status_code == 200, patched.text
            other = c.post("/v1/members", json={"id": "bob", "joined_at": AT},
                           headers={"Idempotency-Key": "m-bob"})  # fmt: skip
            assert other.status_code == 201, other.text
            assert c.post("/v1/events", json=EVENT).status_code in (200, 201)
        Ledger(live.db).create_member("shop", "cli-carl")  # the command line's enrolment
        receiver.script.append(503)
        assert DeliveryWorker(live.db, allow_private=True, clock=Clock()).run_once().failed == 1
        with live.client() as c:
            exported = c.get("/v1/members/ann/export").json()
            carl = c.get("/v1/members/cli-carl/export").json()
    finally:
        receiver.close()
    answers = exported["stored_answers"]
    assert [(a["idem_key"], a["route"], a["status_code"]) for a in answers] == [
        ("m-ann", "POST /v1/members", 201), ("p-ann", "PATCH /v1/members/ann", 200)]  # fmt: skip
    assert answers[0]["body"] == made.json()
    assert answers[0]["body"]["attributes"] == {"email": "old@example.com"}
    assert answers[1]["body"] == patched.json()
    (event,) = [e for e in exported["webhook_events"] if e["event_type"] == "points.earned"]
    others = [e["deliveries"] for e in exported["webhook_events"] if e is not event]
    assert others == [[]] * len(others)  # no subscription to those
    (delivery,) = event["deliveries"]
    assert (delivery["subscription_id"], delivery["state"], delivery["attempts"],
            delivery["last_status"]) == (sub.id, "failed", 1, 503)  # fmt: skip
    assert [(t["number"], t["status"], t["error"]) for t in delivery["attempt_log"]] == [
        (1, 503, "HTTP 503")]  # fmt: skip
    assert [r["key"] for r in exported["idempotency_records"]] == ["member:ann"]
    assert [r["key"] for r in carl["idempotency_records"]] == ["member:cli-carl"]
    assert carl["stored_answers"] == []


def test_the_export_leaves_out_other_members_of_a_stored_bulk_answer(live: Live) -> None:
    """A bulk adjustment and an event batch answer for ann and bob at once: ann's export
    lists those stored answers with ann's parts only, never bob's reference."""
    bob_event = {**EVENT, "id": "E2", "member": "bob.secret"}
    with live.client("admin") as c:
        for member in ("ann", "bob.secret"):
            assert c.post("/v1/members", json={"id": member, "joined_at": AT}).status_code == 201
        bulk = c.post(
            "/v1/adjustments:bulk",
            headers={"Idempotency-Key": "b-1"},
            json={"points": 5, "reason": "gift", "members": ["ann", "bob.secret"]},
        )
        assert bulk.status_code == 200, bulk.text
        batch = c.post(
            "/v1/events:batch",
            headers={"Idempotency-Key": "e-1"},
            json={"events": [EVENT, bob_event]},
        )
        assert batch.status_code == 200, batch.text
        assert "bob.secret" in bulk.text and "bob.secret" in batch.text
        exported = c.get("/v1/members/ann/export").json()
    answers = {a["idem_key"]: a for a in exported["stored_answers"]}
    assert sorted(answers) == ["b-1", "e-1"]
    assert "bob.secret" not in str(exported)
    assert "ann" in str(answers["b-1"]["body"]) and "E1" in str(answers["e-1"]["body"])
