"""UTC offsets over real HTTP, on a SQLite file and PostgreSQL.

- A time written with an offset no clock has (beyond -12:00..+14:00: ``-23:59``,
  ``+16:00``) is a 422 naming its field, in every body that takes a time, and in a batch
  that event alone is rejected in its place, the others recorded. On PostgreSQL such an
  event was a 500 (the server keeps no offset beyond +-15:59), and failed its whole
  batch. -12:00 and +14:00 themselves are accepted.
- A time without offset is refused in the import's words (pydantic said ``Input should
  have timezone info``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Live
from tests.support import snapshot

PROBLEM = "application/problem+json"
OFFSETS = (
    "offsets run from -12:00 to +14:00 (write the time with its real offset, or in UTC with Z)"
)


def wrong(value: str, offset: str) -> str:
    return f"{value} has UTC offset {offset}: {OFFSETS}"


def event(event_id: str, at: str, amount: str = "5") -> dict[str, Any]:
    return {"id": event_id, "type": "purchase", "member": "ann", "at": at, "amount": amount}


def calls(value: str, redemption: int) -> list[tuple[str, dict[str, Any], str]]:
    """Every body field that takes a time: (path, body, the field as the problem names it)."""
    return [
        ("/v1/events", event("e1", value), "body.at"),
        ("/v1/members", {"id": "bob", "joined_at": value}, "body.joined_at"),
        ("/v1/members/ann/adjustments", {"points": 5, "reason": "r", "expires_at": value},
         "body.expires_at"),
        ("/v1/adjustments:bulk", {"points": 5, "reason": "r", "members": ["ann"],
                                  "expires_at": value}, "body.expires_at"),
        ("/v1/members/ann/tier:assign", {"tier": "silver", "until": value, "reason": "r"},
         "body.until"),
        (f"/v1/redemptions/{redemption}:use", {"at": value}, "body.at"),
    ]  # fmt: skip


def state(live: Live) -> tuple[Any, ...]:
    with live.client("admin") as c:
        reads = [c.get(p).json() for p in ("/v1/members/ann", "/v1/members/ann/tier",
                                           "/v1/members/ann/redemptions")]  # fmt: skip
    return (snapshot(live.db), reads)


@pytest.mark.parametrize(
    ("value", "offset"),
    [
        ("2026-02-28T10:00:00-23:59", "-23:59"),
        ("2026-02-28T10:00:00+16:00", "+16:00"),
        ("2026-02-28T10:00:00+18:00", "+18:00"),
        ("2026-02-28T10:00:00-12:01", "-12:01"),
        ("2026-02-28T10:00:00+14:01", "+14:01"),
    ],
)
def test_an_offset_no_clock_has_is_a_422_naming_the_field(
    live: Live, value: str, offset: str
) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        credit = {"points": 50, "reason": "seed"}
        assert c.post("/v1/members/ann/adjustments", json=credit,
                      headers={"Idempotency-Key": "seed"}).status_code == 201  # fmt: skip
        redeemed = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"},
                          headers={"Idempotency-Key": "r"})  # fmt: skip
        assert redeemed.status_code == 201, redeemed.text
        before = state(live)
        for n, (path, body, field) in enumerate(calls(value, redeemed.json()["id"])):
            answer = c.post(path, json=body, headers={"Idempotency-Key": f"k{n}"})
            assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), path
            problem = answer.json()
            assert (problem["code"], problem["detail"]) == (
                "invalid_request",
                f"{field}: {wrong(value, offset)}",
            ), path
        assert state(live) == before
        assert c.get("/v1/members/bob").status_code == 404


def test_in_a_batch_the_event_alone_is_rejected_and_the_others_recorded(live: Live) -> None:
    value = "2026-02-28T10:00:00-23:59"
    with live.client("integration") as c:
        batch = c.post("/v1/events:batch", json={"events": [
            event("ok1", "2026-02-28T10:00:00+01:00", "12"), event("bad", value),
            event("ok2", "2026-02-28T11:00:00Z", "3"),
        ]})  # fmt: skip
        assert batch.status_code == 200, batch.text
        first, second, third = batch.json()["results"]
        assert [(r["event_id"], r["outcome"]) for r in (first, third)] == [
            ("ok1", "processed"), ("ok2", "processed"),
        ]  # fmt: skip
        assert (first["points"], third["points"]) == ({"points": 12}, {"points": 3})
        assert second == {"event_id": "bad", "outcome": "rejected", "problem": {
            "type": "https://fidelite.dev/problems/invalid_event", "title": "invalid event",
            "status": 422, "detail": f"body.events.1.at: {wrong(value, '-23:59')}",
            "code": "invalid_event", "errors": [
                {"location": "body.events.1.at", "message": wrong(value, "-23:59")}]}}  # fmt: skip
        assert c.get("/v1/events/ok1").status_code == 200
        assert c.get("/v1/events/bad").json()["code"] == "unknown_event"
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 15
        assert live.ledger_rows() == 2


def test_the_offsets_at_the_ends_of_the_worlds_clocks_are_accepted(live: Live) -> None:
    with live.client("integration") as c:
        west = c.post("/v1/events", json=event("w", "2026-02-28T10:00:00-12:00"))
        east = c.post("/v1/events", json=event("e", "2026-02-28T10:00:00+14:00"))
        assert (west.status_code, east.status_code) == (201, 201), (west.text, east.text)
        assert c.get("/v1/events/w").json()["at"] == "2026-02-28T22:00:00Z"
        assert c.get("/v1/events/e").json()["at"] == "2026-02-27T20:00:00Z"
        assert live.ledger_rows() == 2


def test_a_time_without_offset_is_refused_in_the_imports_words(live: Live) -> None:
    value = "2026-02-28T10:00:00"
    told = f"needs a UTC offset (e.g. +00:00): {value!r}"
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        before = state(live)
        alone = c.post("/v1/events", json=event("e1", value))
        assert (alone.status_code, alone.json()["detail"]) == (422, f"body.at: {told}")
        day = c.post("/v1/members", json={"id": "bob", "joined_at": "2026-02-28"})
        assert (day.status_code, day.json()["detail"]) == (
            422, "body.joined_at: needs a UTC offset (e.g. +00:00): '2026-02-28'",
        )  # fmt: skip
        batch = c.post("/v1/events:batch", json={"events": [event("e1", value)]})
        (entry,) = batch.json()["results"]
        assert (entry["outcome"], entry["problem"]["detail"]) == (
            "rejected", f"body.events.0.at: {told}",
        )  # fmt: skip
        assert state(live) == before
