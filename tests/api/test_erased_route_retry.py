"""A retry, after the member's erasure, of a keyed request whose route names the member
(``PATCH /v1/members/{id}``, ``POST /v1/members/{id}/adjustments``) finds no such member
(404 ``unknown_member``, nothing changed), as docs/api.md says, rather than the stored
answer, which the erasure anonymised and which would link the reference to its
tombstone. The erasure's own keyed request replays its record. Over real HTTP, on SQLite
and PostgreSQL."""

from __future__ import annotations

from tests.api.conftest import Live
from tests.support import snapshot

AT = "2026-11-02T10:00:00Z"


def test_a_retry_naming_the_erased_member_finds_no_such_member(live: Live) -> None:
    patch = {"attributes": {"email": "alice@example.com"}}
    adjust = {"points": 5, "reason": "gift"}
    with live.client() as c:
        assert c.post("/v1/members", json={"id": "alice", "joined_at": AT}).status_code == 201
        assert c.patch("/v1/members/alice", json=patch,
                       headers={"Idempotency-Key": "p-alice"}).status_code == 200  # fmt: skip
        assert c.post("/v1/members/alice/adjustments", json=adjust,
                      headers={"Idempotency-Key": "a-alice"}).status_code == 201  # fmt: skip
        erased = c.delete("/v1/members/alice", headers={"Idempotency-Key": "d-alice"})
        assert erased.status_code == 200, erased.text
        before = snapshot(live.db)
        retries = [
            c.patch("/v1/members/alice", json=patch, headers={"Idempotency-Key": "p-alice"}),
            c.post("/v1/members/alice/adjustments", json=adjust,
                   headers={"Idempotency-Key": "a-alice"}),
        ]  # fmt: skip
        for retry in retries:
            assert retry.status_code == 404, retry.text
            assert (retry.json()["code"], retry.json()["detail"]) == (
                "unknown_member", "no member 'alice' in program 'shop'")  # fmt: skip
            assert "erased-" not in retry.text
        assert snapshot(live.db) == before
        again = c.delete("/v1/members/alice", headers={"Idempotency-Key": "d-alice"})
        assert again.status_code == 200, again.text
        assert {**again.json(), "replayed": False} == erased.json()


def test_a_member_called_members_is_one_member_of_the_route(live: Live) -> None:
    """``/v1/members/members/tier:assign`` names one member, ``members``: a retry after
    their erasure is a 404 like any other (it was a 500, the route read as naming two)."""
    assign = {"tier": "silver", "until": "2027-06-30T00:00:00Z", "reason": "r"}
    key = {"Idempotency-Key": "t-members"}
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "members", "joined_at": AT}).status_code == 201
        first = c.post("/v1/members/members/tier:assign", json=assign, headers=key)
        assert first.status_code == 201, first.text
        assert c.delete("/v1/members/members").status_code == 200
        before = snapshot(live.db)
        retry = c.post("/v1/members/members/tier:assign", json=assign, headers=key)
        assert retry.status_code == 404, retry.text
        assert (retry.json()["code"], retry.json()["detail"]) == (
            "unknown_member", "no member 'members' in program 'shop'")  # fmt: skip
        assert snapshot(live.db) == before
