"""``POST /v1/members`` over real HTTP, on SQLite and PostgreSQL, agrees with the members
import: a ``joined_at`` counts for a new member only. For a member already enrolled the
call answers 200 with the member as it is (a future ``joined_at`` is ignored like any
other, not refused); for a new member a future one is refused and nothing is written. A
time before 1970 is refused whoever the member."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Live

PROBLEM = "application/problem+json"
JOINED = "2026-03-01T09:00:00Z"


@pytest.fixture
def client(live: Live) -> Any:
    with live.client("admin") as c:
        answer = c.post("/v1/members", json={"id": "m4", "joined_at": JOINED,
                                              "segments": ["regular"]})  # fmt: skip
        assert answer.status_code == 201, answer.text
        yield c


def test_a_future_join_of_an_existing_member_is_ignored(live: Live, client: httpx.Client) -> None:
    before = client.get("/v1/members/m4").json()
    assert (before["joined_at"], before["segments"]) == (JOINED, ["regular"])
    answer = client.post("/v1/members", json={"id": "m4", "joined_at": "2099-01-01T00:00:00Z",
                                              "segments": ["vip"]})  # fmt: skip
    assert (answer.status_code, answer.json()) == (200, before), answer.text
    assert client.get("/v1/members/m4").json() == before
    # the profile changes through PATCH, the join date stays
    answer = client.patch("/v1/members/m4", json={"segments": ["vip"]})
    assert (answer.status_code, answer.json()["segments"], answer.json()["joined_at"]) == (
        200, ["vip"], JOINED)  # fmt: skip


def test_a_future_join_of_a_new_member_is_refused(live: Live, client: httpx.Client) -> None:
    members = client.get("/v1/members").json()
    answer = client.post("/v1/members", json={"id": "m5", "joined_at": "2099-01-01T00:00:00Z",
                                              "segments": ["vip"]})  # fmt: skip
    assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), answer.text
    (error,) = answer.json()["errors"]
    assert error["location"] == "body.joined_at"
    assert error["message"].startswith(
        "2099-01-01T00:00:00+00:00 is in the future: later than now ("
    ) and error["message"].endswith(
        ") plus the program's tolerance of 5 minute(s) (future_tolerance_minutes)"
    )  # fmt: skip
    assert client.get("/v1/members/m5").status_code == 404
    assert client.get("/v1/members").json() == members
    assert live.ledger_rows() == 0


def test_a_join_before_1970_is_refused_for_an_existing_member_too(
    live: Live, client: httpx.Client
) -> None:
    before = client.get("/v1/members/m4").json()
    answer = client.post("/v1/members", json={"id": "m4", "joined_at": "1969-12-31T23:59:59Z"})
    assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), answer.text
    assert answer.json()["errors"] == [{
        "location": "body.joined_at", "message": "1969-12-31T23:59:59+00:00 is before "
        "1970-01-01T00:00:00Z, the earliest time accepted"}]  # fmt: skip
    assert client.get("/v1/members/m4").json() == before
