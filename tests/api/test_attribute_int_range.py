"""An attribute holding a whole number beyond 64 bits (the range rule conditions compute
with) is refused where it comes in, naming its path: an event's (422, nothing written)
and a member's; at the bounds it is taken. Before, the event was processed and its rule
trace told a conversion error. Real HTTP, SQLite file and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Live

REVIEW = {"type": "review", "member": "ann", "at": "2026-11-20T10:00:00+01:00"}
PROBLEM = "application/problem+json"
TOO_BIG = ("a whole number must be from -9223372036854775808 to 9223372036854775807 (the "
           "64-bit range rule conditions compute with), got a number of {} digits")  # fmt: skip


def refusal(location: str, digits: int) -> dict[str, Any]:
    message = TOO_BIG.format(digits)
    return {"type": "https://fidelite.dev/problems/invalid_request", "title": "invalid request",
            "status": 422, "detail": f"{location}: {message}", "code": "invalid_request",
            "errors": [{"location": location, "message": message}]}  # fmt: skip


def test_an_attribute_beyond_64_bits_is_refused_naming_its_path(live: Live) -> None:
    huge = '{"id": "r1", "type": "review", "member": "ann", "at": "2026-11-20T10:00:00+01:00", '
    huge += '"attributes": {"stars": ' + "9" * 4000 + "}}"
    with live.client("integration") as c:
        event = c.post("/v1/events", content=huge, headers={"Content-Type": "application/json"})
        over = c.post("/v1/events", json={**REVIEW, "id": "r2", "attributes": {"n": 2**63}})
        under = c.post("/v1/events", json={**REVIEW, "id": "r3", "attributes": {"n": -(2**63) - 1}})
        member = c.post("/v1/members", json={"id": "bob", "attributes": {"n": 2**64}})
        assert live.ledger_rows() == 0
        for gone in ("/v1/events/r1", "/v1/events/r2", "/v1/events/r3", "/v1/members/ann",
                     "/v1/members/bob"):  # fmt: skip
            assert c.get(gone).status_code == 404
        bounds = {"n": 2**63 - 1, "m": -(2**63)}
        edge = c.post("/v1/events", json={**REVIEW, "id": "r4", "attributes": bounds})
        kept = c.post("/v1/members", json={"id": "cat", "attributes": {"n": 2**63 - 1}})
    for answer in (event, over, under, member):
        assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM)
    assert event.json() == refusal("body.attributes.stars", 4000)
    assert over.json() == refusal("body.attributes.n", 19)
    assert under.json() == refusal("body.attributes.n", 19)
    assert member.json() == refusal("body.attributes.n", 20)
    assert (edge.status_code, edge.json()["outcome"]) == (201, "processed")
    assert (kept.status_code, kept.json()["attributes"]) == (201, {"n": 2**63 - 1})
