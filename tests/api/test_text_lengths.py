"""Over real HTTP, on SQLite and PostgreSQL: a text field the API takes is no longer than
the column that keeps it, so a longer one is a 422 ``invalid_request`` naming the field
and its limit, not a refusal from deeper down (an adjustment's reason of 201 to 300
characters got the ledger's own refusal; a webhook's description of 201 to 300 failed on
PostgreSQL, the column holding 200). Nothing is written; the limit itself is accepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Live

PROBLEM = "application/problem+json"
LONG = "String should have at most 200 characters"


def refused(answer: httpx.Response, location: str) -> None:
    assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), answer.text
    problem = answer.json()
    assert (problem["code"], problem["detail"]) == ("invalid_request", f"{location}: {LONG}")
    assert problem["errors"] == [{"location": location, "message": LONG}]


@pytest.fixture
def client(live: Live) -> Any:
    with live.client("admin") as c:
        for member in ("ann", "bob"):
            assert c.post("/v1/members", json={"id": member}).status_code == 201
        yield c


def state(live: Live, c: httpx.Client) -> tuple[Any, ...]:
    return (live.ledger_rows(), c.get("/v1/members/ann/ledger").json(),
            c.get("/v1/members/bob/ledger").json(), c.get("/v1/webhooks").json())  # fmt: skip


@pytest.mark.parametrize("size", [201, 250, 300])
def test_an_adjustment_reason_longer_than_200_is_refused_naming_it(
    live: Live, client: httpx.Client, size: int
) -> None:
    before = state(live, client)
    reason = "r" * size
    one = client.post("/v1/members/ann/adjustments", json={"points": 5, "reason": reason},
                      headers={"Idempotency-Key": "one"})  # fmt: skip
    refused(one, "body.reason")
    bulk = client.post("/v1/adjustments:bulk", json={"points": 5, "reason": reason,
                                                     "members": ["ann", "bob"]},
                       headers={"Idempotency-Key": "bulk"})  # fmt: skip
    refused(bulk, "body.reason")
    hook = client.post("/v1/webhooks", json={"url": "https://93.184.216.34/hooks",
                                             "event_types": ["points.earned"],
                                             "description": "d" * size})  # fmt: skip
    refused(hook, "body.description")
    assert state(live, client) == before
    # nothing stored under the keys: the corrected calls may use them
    one = client.post("/v1/members/ann/adjustments", json={"points": 5, "reason": "short"},
                      headers={"Idempotency-Key": "one"})  # fmt: skip
    assert (one.status_code, one.json()["replayed"]) == (201, False), one.text
    bulk = client.post("/v1/adjustments:bulk", json={"points": 5, "reason": "short",
                                                     "members": ["ann", "bob"]},
                       headers={"Idempotency-Key": "bulk"})  # fmt: skip
    assert (bulk.status_code, bulk.json()["credited"]) == (200, 2), bulk.text


def test_200_characters_are_accepted(live: Live, client: httpx.Client) -> None:
    reason = "r" * 200
    one = client.post("/v1/members/ann/adjustments", json={"points": 5, "reason": reason},
                      headers={"Idempotency-Key": "one"})  # fmt: skip
    assert one.status_code == 201, one.text
    bulk = client.post("/v1/adjustments:bulk", json={"points": 5, "reason": reason,
                                                     "members": ["ann", "bob"]},
                       headers={"Idempotency-Key": "bulk"})  # fmt: skip
    assert (bulk.status_code, bulk.json()["credited"]) == (200, 2), bulk.text
    ledger = client.get("/v1/members/ann/ledger").json()
    assert [e["reason"] for e in ledger["entries"]] == [reason, reason]
    hook = client.post("/v1/webhooks", json={"url": "https://93.184.216.34/hooks",
                                             "event_types": ["points.earned"],
                                             "description": "d" * 200})  # fmt: skip
    assert (hook.status_code, hook.json()["description"]) == (201, "d" * 200), hook.text
