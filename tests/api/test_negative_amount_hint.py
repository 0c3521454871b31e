"""A negative event amount sent to the API is refused with what to send instead (a
refund event), as the CSV import says it of a negative amount cell; nothing is written."""

from __future__ import annotations

from tests.api.conftest import Live

HINT = (
    "Input should be greater than or equal to 0; a refund is an event of type refund "
    "with a positive amount and refund_of (the purchase's event id)"
)
EVENT = {"id": "n1", "type": "purchase", "member": "ann", "at": "2026-12-03T10:00:00+01:00",
         "amount": "-12"}  # fmt: skip


def test_a_negative_amount_says_to_send_a_refund(live: Live) -> None:
    with live.client("integration") as c:
        alone = c.post("/v1/events", json=EVENT)
        assert (alone.status_code, alone.json()["detail"]) == (422, f"body.amount: {HINT}")
        batch = c.post("/v1/events:batch", json={"events": [{**EVENT, "id": "n2"}]})
        assert batch.status_code == 200
        problem = batch.json()["results"][0]["problem"]
        assert problem["errors"] == [{"location": "body.events.0.amount", "message": HINT}]
        assert c.get("/v1/events/n1").json()["code"] == "unknown_event"
        assert c.get("/v1/events/n2").json()["code"] == "unknown_event"
    assert live.ledger_rows() == 0
