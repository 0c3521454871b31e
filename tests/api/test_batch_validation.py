"""A batch's invalid events over real HTTP (SQLite file and PostgreSQL): an event that
fails validation is rejected in its place (``invalid_event``, naming the field as
``POST /v1/events`` does) and the others are processed in order; only a malformed
envelope (not an object, no ``events`` list, an item that is no object, too many) fails
the whole request with 422, and then nothing is written."""

from __future__ import annotations

from typing import Any

from fidelite.engine.event import NEGATIVE_AMOUNT
from tests.api.conftest import Live

PROBLEM = "application/problem+json"
BB1 = {"id": "bb1", "type": "purchase", "member": "ann", "at": "2026-12-03T10:00:00+01:00",
       "amount": "12"}  # fmt: skip
BB2 = {**BB1, "id": "bb2", "at": "2026-12-03T10:00:00"}  # no offset: not a valid event
NO_OFFSET = "needs a UTC offset (e.g. +00:00): '2026-12-03T10:00:00'"
AT_LEAST_0 = NEGATIVE_AMOUNT  # with how to send money back: a refund event


def rejected(event_id: str | None, errors: list[tuple[str, str]]) -> dict[str, Any]:
    """The entry of an invalid event: its errors as (location, message)."""
    where, message = errors[0]
    return {"event_id": event_id, "outcome": "rejected", "problem": {
        "type": "https://fidelite.dev/problems/invalid_event", "title": "invalid event",
        "status": 422, "detail": f"{where}: {message}", "code": "invalid_event",
        "errors": [{"location": loc, "message": msg} for loc, msg in errors]}}  # fmt: skip


def test_an_invalid_event_is_rejected_in_its_place_and_the_others_processed(live: Live) -> None:
    with live.client("integration") as c:
        alone = c.post("/v1/events", json=BB2)  # the same bad input sent alone
        assert (alone.status_code, alone.json()["detail"]) == (422, f"body.at: {NO_OFFSET}")
        bb3 = {**BB1, "id": "bb3", "amount": "5"}
        out = c.post("/v1/events:batch", json={"events": [BB1, BB2, bb3]})
        assert (out.status_code, out.headers["content-type"]) == (200, "application/json")
        first, second, third = out.json()["results"]
        assert (first["event_id"], first["outcome"], first["points"]) == (
            "bb1", "processed", {"points": 12},
        )  # fmt: skip
        assert second == rejected("bb2", [("body.events.1.at", NO_OFFSET)])
        assert (third["event_id"], third["outcome"], third["points"]) == (
            "bb3", "processed", {"points": 5},
        )  # fmt: skip
        recorded = c.get("/v1/events/bb1")
        assert (recorded.status_code, recorded.json()["amount"]) == (200, "12.0000")
        assert c.get("/v1/events/bb2").json()["code"] == "unknown_event"
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
        assert balance["available"] == 17
        assert live.ledger_rows() == 2


def test_a_batch_of_only_invalid_events_answers_each_and_writes_nothing(live: Live) -> None:
    no_member = {k: v for k, v in BB1.items() if k != "member"}
    numeric_id = {**BB1, "id": 7, "amount": "-3"}
    with live.client("integration") as c:
        out = c.post("/v1/events:batch", json={"events": [BB2, no_member, numeric_id]})
        assert out.status_code == 200
        assert out.json() == {"results": [
            rejected("bb2", [("body.events.0.at", NO_OFFSET)]),
            rejected("bb1", [("body.events.1.member", "Field required")]),
            rejected(None, [("body.events.2.id", "Input should be a valid string"),
                            ("body.events.2.amount", AT_LEAST_0)]),
        ]}  # fmt: skip
        assert live.ledger_rows() == 0
        assert c.get("/v1/events/bb1").status_code == 404
        assert c.get("/v1/members/ann").status_code == 404


def test_a_malformed_envelope_fails_the_whole_batch(live: Live) -> None:
    cases: list[tuple[Any, str]] = [
        ([BB1], "body: Input should be a valid dictionary or object to extract fields from"),
        ({}, "body.events: Field required"),
        ({"events": BB1}, "body.events: Input should be a valid list"),
        ({"events": []}, "body.events: List should have at least 1 item after validation, "
                         "not 0"),
        ({"events": [BB1, "bb2"]},
         "body.events.1: Input should be a valid dictionary or object to extract fields from"),
        ({"events": [BB1], "more": 1}, "body.more: Extra inputs are not permitted"),
        ({"events": [BB1] * 1001},
         "body.events: at most 1000 events per batch; this one holds 1001"),
    ]  # fmt: skip
    with live.client("integration") as c:
        for n, (body, detail) in enumerate(cases):
            out = c.post("/v1/events:batch", json=body, headers={"Idempotency-Key": f"k{n}"})
            assert (out.status_code, out.headers["content-type"]) == (422, PROBLEM), body
            assert (out.json()["code"], out.json()["detail"]) == ("invalid_request", detail)
        assert live.ledger_rows() == 0
        assert c.get("/v1/events/bb1").status_code == 404
        # a refused envelope stores no answer: the key is free for the corrected batch
        fixed = c.post("/v1/events:batch", json={"events": [BB1]},
                       headers={"Idempotency-Key": "k4"})  # fmt: skip
        assert (fixed.status_code, fixed.json()["results"][0]["outcome"]) == (200, "processed")


def test_a_batch_with_a_rejected_event_is_replayed_under_its_key(live: Live) -> None:
    batch = {"events": [BB1, BB2]}
    with live.client("integration") as c:
        first = c.post("/v1/events:batch", json=batch, headers={"Idempotency-Key": "b1"})
        assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
        rows = live.ledger_rows()
        again = c.post("/v1/events:batch", json=batch, headers={"Idempotency-Key": "b1"})
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
        assert again.json() == first.json()
        assert again.json()["results"][1] == rejected("bb2", [("body.events.1.at", NO_OFFSET)])
        # the rejected event corrected is another body: not under the same key
        fixed = {"events": [BB1, {**BB2, "at": "2026-12-03T10:00:00+01:00"}]}
        reused = c.post("/v1/events:batch", json=fixed, headers={"Idempotency-Key": "b1"})
        assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
        assert live.ledger_rows() == rows == 1
        # under a new key: bb1 is a duplicate, bb2 is now processed
        out = c.post("/v1/events:batch", json=fixed, headers={"Idempotency-Key": "b2"})
        assert [r["outcome"] for r in out.json()["results"]] == ["duplicate", "processed"]
        assert live.ledger_rows() == 2
