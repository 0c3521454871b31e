"""Times at the calendar's ends over real HTTP: one whose UTC time falls outside years 1
to 9999 is a 422 problem naming its field and changes nothing (it was a 500)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Live

PROBLEM = "application/problem+json"


def calls(value: str) -> list[tuple[str, dict[str, Any], str]]:
    """Every body field that takes a time: (path, body, the field as the problem names it)."""
    event = {"id": "e1", "type": "purchase", "member": "ann", "at": value, "amount": "5"}
    return [
        ("/v1/events", event, "body.at"),
        ("/v1/members", {"id": "bob", "joined_at": value}, "body.joined_at"),
        ("/v1/members/ann/adjustments", {"points": 5, "reason": "r", "expires_at": value},
         "body.expires_at"),
        ("/v1/members/ann/tier:assign", {"tier": "silver", "until": value, "reason": "r"},
         "body.until"),
    ]  # fmt: skip


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_outside_the_calendar_is_a_422_naming_the_field(live: Live, value: str) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        before = (live.ledger_rows(), c.get("/v1/members/ann/tier").json())
        for n, (path, body, field) in enumerate(calls(value)):
            answer = c.post(path, json=body, headers={"Idempotency-Key": f"k{n}"})
            assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), path
            problem = answer.json()
            assert (problem["code"], problem["detail"]) == (
                "invalid_request",
                f"{field}: Value error, {value} is outside the calendar once in UTC",
            ), path
        # in a batch, the event is rejected in its place, naming the field the same way
        event = {"id": "e1", "type": "purchase", "member": "ann", "at": value, "amount": "5"}
        batch = c.post("/v1/events:batch", json={"events": [event]})
        (entry,) = batch.json()["results"]
        assert (batch.status_code, entry["outcome"], entry["problem"]["code"]) == (
            200, "rejected", "invalid_event",
        )  # fmt: skip
        assert entry["problem"]["detail"] == (
            f"body.events.0.at: Value error, {value} is outside the calendar once in UTC"
        )
        assert (live.ledger_rows(), c.get("/v1/members/ann/tier").json()) == before
        assert c.get("/v1/members/bob").status_code == 404
        assert c.get("/v1/members/ann").json()["purchases"] == 0
