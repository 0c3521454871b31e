"""An event amount finer than the 4 decimal places the books keep is refused with 422
problem+json naming ``amount`` (one event), or as its own rejected entry (a batch), and
nothing is written; trailing zeros are no places. Real HTTP, SQLite file and PostgreSQL."""

from __future__ import annotations

from fidelite.ledger import assert_invariants
from tests.api.conftest import Live

PURCHASE = {"type": "purchase", "member": "ann", "at": "2026-11-20T10:00:00+01:00"}
PROBLEM = "application/problem+json"
PLACES = "at most 4 decimal places (the books keep money to 1/10,000), got {}"


def test_one_event_with_a_finer_amount_is_refused_and_nothing_is_written(live: Live) -> None:
    with live.client("integration") as c:
        for sent in ("10.00005", 10.00005):
            refused = c.post("/v1/events", json={**PURCHASE, "id": "e1", "amount": sent})
            assert (refused.status_code, refused.headers["content-type"]) == (422, PROBLEM)
            assert refused.json() == {
                "type": "https://fidelite.dev/problems/invalid_request",
                "title": "invalid request",
                "status": 422,
                "detail": "body.amount: " + PLACES.format("10.00005"),
                "code": "invalid_request",
                "errors": [{"location": "body.amount", "message": PLACES.format("10.00005")}],
            }
        assert live.ledger_rows() == 0
        assert c.get("/v1/members/ann").status_code == 404
        assert c.get("/v1/events/e1").status_code == 404


def test_a_finer_amount_in_a_batch_is_rejected_alone(live: Live) -> None:
    events = [{**PURCHASE, "id": "e1", "amount": "1.23456"},
              {**PURCHASE, "id": "e2", "amount": "10.00000"}]  # fmt: skip
    with live.client("integration") as c:
        out = c.post("/v1/events:batch", json={"events": events}, headers={"Idempotency-Key": "k"})
        assert out.status_code == 200
        first, second = out.json()["results"]
        assert (first["event_id"], first["outcome"]) == ("e1", "rejected")
        assert first["problem"]["code"] == "invalid_event"
        assert first["problem"]["errors"] == [
            {"location": "body.events.0.amount", "message": PLACES.format("1.23456")}
        ]
        assert (second["event_id"], second["outcome"], second["points"]) == (
            "e2", "processed", {"points": 10},
        )  # fmt: skip
        assert live.ledger_rows() == 1
        assert c.get("/v1/events/e1").status_code == 404
    assert_invariants(live.db, "shop")


def test_trailing_zeros_sent_again_are_a_duplicate_and_refund_in_full(live: Live) -> None:
    sent = {**PURCHASE, "id": "e1", "amount": "10.00000"}
    refund = {**PURCHASE, "type": "refund", "id": "r1", "amount": "10.00000", "refund_of": "e1",
              "at": "2026-11-21T10:00:00+01:00"}  # fmt: skip
    with live.client("integration") as c:
        first = c.post("/v1/events", json=sent)
        assert (first.status_code, first.json()["points"]) == (201, {"points": 10})
        again = c.post("/v1/events", json=sent)  # no idempotency key: the event id decides
        assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
        back = c.post("/v1/events", json=refund)
        assert (back.status_code, back.json()["points"]) == (201, {"points": -10})
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
        assert (balance["available"], balance["pending"], balance["debt"]) == (0, 0, 0)
    assert_invariants(live.db, "shop")
