"""A coupon code longer than the 64 characters the events table keeps is refused with
422 problem+json naming ``coupon``, and nothing is written: on PostgreSQL it was a 500
(``varchar(64)`` overflow), on SQLite a recorded ``coupon_invalid``. A code of 64
characters is recorded as sent, the same on both. Real HTTP, SQLite file and PostgreSQL."""

from __future__ import annotations

from fidelite.ledger import assert_invariants
from tests.api.conftest import Live

PURCHASE = {"type": "purchase", "member": "ann", "at": "2026-12-07T08:40:00+01:00",
            "amount": "10"}  # fmt: skip
PROBLEM = "application/problem+json"
TOO_LONG = "at most 64 characters (a coupon code is at most 25), got {}"


def test_a_coupon_longer_than_64_characters_is_refused_and_nothing_is_written(
    live: Live,
) -> None:
    with live.client("integration") as c:
        for code, got in (("X" * 80, "80"), ("X" * 65, "65"), ("ß" * 40, "40 (80 upper-cased)")):
            refused = c.post("/v1/events", json={**PURCHASE, "id": "long1", "coupon": code})
            assert (refused.status_code, refused.headers["content-type"]) == (422, PROBLEM)
            assert refused.json() == {
                "type": "https://fidelite.dev/problems/invalid_request",
                "title": "invalid request",
                "status": 422,
                "detail": "body.coupon: " + TOO_LONG.format(got),
                "code": "invalid_request",
                "errors": [{"location": "body.coupon", "message": TOO_LONG.format(got)}],
            }
        assert live.ledger_rows() == 0
        assert c.get("/v1/members/ann").status_code == 404
        assert c.get("/v1/events/long1").status_code == 404


def test_a_coupon_of_64_characters_is_recorded_as_sent(live: Live) -> None:
    with live.client("integration") as c:
        sent = c.post("/v1/events", json={**PURCHASE, "id": "e64", "coupon": "X" * 64})
        assert (sent.status_code, sent.json()["points"]) == (201, {"points": 10})
        recorded = c.get("/v1/events/e64").json()
        assert (recorded["coupon"], recorded["coupon_accepted"]) == ("X" * 64, False)
        again = c.post("/v1/events", json={**PURCHASE, "id": "e64", "coupon": "X" * 64})
        assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert_invariants(live.db, "shop")
