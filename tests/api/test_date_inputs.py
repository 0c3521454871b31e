"""Times, dates and attribute numbers a client sends, over real HTTP: a number (or
numeric text) given as a time or a date is refused naming its field (it was read as
seconds since 1970: a purchase of 2026-12-01 dated 1970-08-23, its points expired), a
time before 1970-01-01T00:00:00Z too, a member's join in the future or birth after
today, and NaN or infinity in attributes (they were stored as null). Nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.api.conftest import Live

PROBLEM = "application/problem+json"
ISO = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-12-01T10:00:00+01:00"
DAY = "must be an ISO 8601 date YYYY-MM-DD, e.g. 1990-05-17"


def event(at: Any, **more: Any) -> dict[str, Any]:
    return {"id": "e3-100", "type": "purchase", "member": "CARD-0003", "at": at,
            "amount": "10.00", **more}  # fmt: skip


def state(live: Live, c: httpx.Client) -> tuple[Any, ...]:
    """What a refused call must leave as it was."""
    members = c.get("/v1/members").json()
    return (live.ledger_rows(), members, c.get("/v1/members/ann/tier").json(),
            c.get("/v1/events/e3-100").status_code)  # fmt: skip


def refused(answer: httpx.Response, location: str, message: str) -> None:
    assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), answer.text
    problem = answer.json()
    assert (problem["code"], problem["detail"]) == ("invalid_request", f"{location}: {message}")
    assert problem["errors"][0] == {"location": location, "message": message}


@pytest.fixture
def client(live: Live) -> Any:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        yield c


@pytest.mark.parametrize(
    ("at", "shown"),
    [("20261201", "'20261201'"), (20261201, "20261201"), ("1700000000", "'1700000000'"),
     (1700000000.5, "1700000000.5")],
)  # fmt: skip
def test_a_number_as_an_events_time_is_refused_naming_at(
    live: Live, client: httpx.Client, at: Any, shown: str
) -> None:
    before = state(live, client)
    refused(client.post("/v1/events", json=event(at)), "body.at", f"{ISO}, got {shown}")
    batch = client.post("/v1/events:batch", json={"events": [event(at)]})
    (entry,) = batch.json()["results"]
    assert (batch.status_code, entry["outcome"], entry["problem"]["code"]) == (
        200, "rejected", "invalid_event")  # fmt: skip
    assert entry["problem"]["detail"] == f"body.events.0.at: {ISO}, got {shown}"
    assert state(live, client) == before


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+00:00", "1900-01-01T00:00:00+00:00",
                                "1969-12-31T23:59:59+00:00"])  # fmt: skip
def test_a_time_before_1970_is_refused(live: Live, client: httpx.Client, at: str) -> None:
    before = state(live, client)
    early = f"Value error, {at} is before 1970-01-01T00:00:00Z, the earliest time accepted"
    early = early.removeprefix("Value error, ")
    refused(client.post("/v1/events", json=event(at)), "body.at", early)
    calls = [
        ("/v1/members", {"id": "FUT", "joined_at": at}, "body.joined_at"),
        ("/v1/members/ann/adjustments", {"points": 5, "reason": "r", "expires_at": at},
         "body.expires_at"),
        ("/v1/members/ann/tier:assign", {"tier": "silver", "until": at, "reason": "r"},
         "body.until"),
    ]  # fmt: skip
    for n, (path, body, where) in enumerate(calls):
        refused(client.post(path, json=body, headers={"Idempotency-Key": f"k{n}"}), where, early)
    assert state(live, client) == before


def test_the_earliest_time_is_accepted(live: Live, client: httpx.Client) -> None:
    answer = client.post("/v1/events", json=event("1970-01-01T01:00:00+01:00"))
    assert (answer.status_code, answer.json()["outcome"]) == (201, "processed"), answer.text
    recorded = client.get("/v1/events/e3-100").json()
    assert recorded["at"] == "1970-01-01T00:00:00Z"


def test_numbers_as_other_times_and_dates_are_refused(live: Live, client: httpx.Client) -> None:
    before = state(live, client)
    calls = [
        ("post", "/v1/members", {"id": "FUT", "joined_at": 20261201}, "body.joined_at",
         f"{ISO}, got 20261201"),
        ("post", "/v1/members", {"id": "FUT", "birth_date": "19900517"}, "body.birth_date",
         f"{DAY}, got '19900517'"),
        ("post", "/v1/members", {"id": "FUT", "birth_date": 0}, "body.birth_date",
         f"{DAY}, got 0"),
        ("patch", "/v1/members/ann", {"birth_date": 19900517}, "body.birth_date",
         f"{DAY}, got 19900517"),
        ("post", "/v1/members/ann/adjustments",
         {"points": 5, "reason": "r", "expires_at": "1800000000"}, "body.expires_at",
         f"{ISO}, got '1800000000'"),
        ("post", "/v1/members/ann/tier:assign",
         {"tier": "silver", "until": 1800000000, "reason": "r"}, "body.until",
         f"{ISO}, got 1800000000"),
    ]  # fmt: skip
    for n, (method, path, body, where, message) in enumerate(calls):
        answer = client.request(method, path, json=body, headers={"Idempotency-Key": f"n{n}"})
        refused(answer, where, message)
    assert state(live, client) == before


def test_a_join_in_the_future_or_a_birth_after_today_is_refused(
    real_clock: None, live: Live, client: httpx.Client
) -> None:
    before = state(live, client)
    answer = client.post("/v1/members", json={"id": "FUT", "joined_at": "2099-01-01T00:00:00Z"})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["errors"][0]["location"] == "body.joined_at"
    assert problem["errors"][0]["message"].startswith(
        "2099-01-01T00:00:00+00:00 is in the future: later than now ("
    ) and problem["errors"][0]["message"].endswith(
        ") plus the program's tolerance of 5 minute(s) (future_tolerance_minutes)"
    )  # fmt: skip
    tomorrow = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)).date()
    today = tomorrow - timedelta(days=1)
    late = f"{tomorrow.isoformat()} is after today ({today.isoformat()} in Europe/Paris)"
    refused(client.post("/v1/members", json={"id": "FUT", "birth_date": tomorrow.isoformat()}),
            "body.birth_date", late)  # fmt: skip
    refused(client.patch("/v1/members/ann", json={"birth_date": tomorrow.isoformat()}),
            "body.birth_date", late)  # fmt: skip
    assert state(live, client) == before
    # within the tolerance, and born today: accepted
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    answer = client.post("/v1/members", json={"id": "SOON", "joined_at": soon,
                                               "birth_date": today.isoformat()})  # fmt: skip
    assert (answer.status_code, answer.json()["birth_date"]) == (201, today.isoformat())


@pytest.mark.parametrize(("raw", "shown"), [("NaN", "nan"), ("1e999", "inf"),
                                            ("-Infinity", "-inf")])  # fmt: skip
def test_non_finite_numbers_in_attributes_are_refused(
    live: Live, client: httpx.Client, raw: str, shown: str
) -> None:
    before = state(live, client)
    message = f"must be a finite number (not NaN or infinity), got {shown}"
    headers = {"content-type": "application/json"}
    member = '{"id": "FUT", "attributes": {"x": RAW}}'.replace("RAW", raw)
    refused(client.post("/v1/members", content=member, headers=headers),
            "body.attributes.x", message)  # fmt: skip
    patch = '{"attributes": {"x": RAW}}'.replace("RAW", raw)
    refused(client.patch("/v1/members/ann", content=patch, headers=headers),
            "body.attributes.x", message)  # fmt: skip
    one = (
        '{"id": "e3-100", "type": "purchase", "member": "CARD-0003", "amount": "10.00", '
        '"at": "2026-12-01T10:00:00+01:00", "attributes": {"x": RAW}}'
    ).replace("RAW", raw)
    refused(client.post("/v1/events", content=one, headers=headers), "body.attributes.x", message)
    batch = client.post("/v1/events:batch", content=f'{{"events": [{one}]}}', headers=headers)
    (entry,) = batch.json()["results"]
    assert (batch.status_code, entry["outcome"], entry["problem"]["detail"]) == (
        200, "rejected", f"body.events.0.attributes.x: {message}")  # fmt: skip
    assert state(live, client) == before
    assert client.get("/v1/members/ann").json()["attributes"] == {}
