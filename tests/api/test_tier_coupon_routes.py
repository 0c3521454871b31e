"""Tier assignment, a member's tier standing and coupon issuance over real HTTP (SQLite
file and PostgreSQL): exact bodies, replays of the Idempotency-Key, and refusals that
change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from fidelite.api.idempotency import store_answer
from fidelite.api.tables import api_requests
from fidelite.engine.coupon import parse_code
from fidelite.processing import EventProcessor
from fidelite.processing.tables import coupons, tier_changes
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.locking import ConcurrentUpdateError
from tests.api.conftest import PROGRAM, Live
from tests.conftest import make_database

UNTIL = "2099-01-01T00:00:00Z"
ASSIGN = {"tier": "silver", "until": UNTIL, "reason": "complaint 118"}


def enrol(live: Live, *refs: str) -> None:
    with live.client("admin") as c:
        for ref in refs:
            assert c.post("/v1/members", json={"id": ref}).status_code == 201


def tier_rows(live: Live) -> list[tuple[Any, ...]]:
    with live.db.read() as conn:
        rows = conn.execute(select(tier_changes.c.member_ref, tier_changes.c.kind,
                                   tier_changes.c.to_tier).order_by(tier_changes.c.id))  # fmt: skip
        return [tuple(r) for r in rows]


def coupon_rows(live: Live) -> list[tuple[Any, ...]]:
    with live.db.read() as conn:
        rows = conn.execute(select(coupons.c.code, coupons.c.campaign, coupons.c.status,
                                   coupons.c.member_ref).order_by(coupons.c.code))  # fmt: skip
        return [tuple(r) for r in rows]


def test_assign_a_tier_then_read_the_standing(live: Live) -> None:
    enrol(live, "ann")
    with live.client("admin") as c:
        done = c.post("/v1/members/ann/tier:assign", json=ASSIGN, headers={"Idempotency-Key": "t1"})
        assert done.status_code == 201, done.text
        body = done.json()
        at = body["change"].pop("at")
        assert body == {
            "member": "ann",
            "change": {"kind": "assigned", "from": "bronze", "to": "silver",
                       "value": "0.0000", "reason": "complaint 118", "event_id": None,
                       "until": UNTIL},
            "until": UNTIL,
        }  # fmt: skip
        again = c.post("/v1/members/ann/tier:assign", json=ASSIGN,
                       headers={"Idempotency-Key": "t1"})  # fmt: skip
        assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
        assert again.json()["change"]["at"] == at
        standing = c.get("/v1/members/ann/tier").json()
        assert standing == {
            "member": "ann", "tier": "silver", "since": at, "review_at": None,
            "grace_until": None, "assigned_until": UNTIL,
            "timeline": [{"at": at, "kind": "assigned", "from": "bronze", "to": "silver",
                          "value": "0.0000", "reason": "complaint 118", "event_id": None,
                          "until": UNTIL}],
        }  # fmt: skip
        assert c.get("/v1/members/ann").json()["tier"] == "silver"
        # the member's timeline gives the entry with the same fields (docs/program.md)
        items = c.get("/v1/members/ann/timeline").json()["timeline"]
        assert [i for i in items if i["kind"].startswith("tier.")] == [
            {"at": at, "kind": "tier.assigned", "from": "bronze", "to": "silver",
             "value": "0.0000", "reason": "complaint 118", "event_id": None, "until": UNTIL},
        ]  # fmt: skip
    assert tier_rows(live) == [("ann", "assigned", "silver")]  # the replay added nothing


def test_an_assignment_until_a_local_time_answers_it_in_utc_as_the_standing_does(
    live: Live,
) -> None:
    """The answer gives ``until`` as the standing and the timeline read it back (UTC,
    ``Z``), not with the offset it was sent with: one instant, one spelling."""
    enrol(live, "ann")
    local = {**ASSIGN, "until": "2099-01-01T00:00:00+01:00"}
    with live.client("admin") as c:
        done = c.post("/v1/members/ann/tier:assign", json=local, headers={"Idempotency-Key": "t"})
        assert done.status_code == 201, done.text
        body = done.json()
        assert (body["until"], body["change"]["until"]) == ("2098-12-31T23:00:00Z",) * 2
        standing = c.get("/v1/members/ann/tier").json()
        assert standing["assigned_until"] == standing["timeline"][0]["until"] == body["until"]


@pytest.mark.parametrize(
    ("member", "body", "status", "code"),
    [
        ("carol", ASSIGN, 404, "unknown_member"),
        ("ann", {**ASSIGN, "tier": "platinum"}, 422, "unknown_tier"),
        ("ann", {**ASSIGN, "until": "2020-01-01T00:00:00Z"}, 422, "invalid_assignment"),
        ("ann", {**ASSIGN, "until": "2099-01-01T00:00:00"}, 422, "invalid_request"),
        ("ann", {**ASSIGN, "reason": ""}, 422, "invalid_request"),
        ("ann", {**ASSIGN, "role": "admin"}, 422, "invalid_request"),
    ],
)  # fmt: skip
def test_a_refused_assignment_changes_nothing(
    live: Live, member: str, body: dict[str, Any], status: int, code: str
) -> None:
    enrol(live, "ann")
    with live.client("admin") as c:
        refused = c.post(f"/v1/members/{member}/tier:assign", json=body,
                         headers={"Idempotency-Key": "t1"})  # fmt: skip
        assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        no_key = c.post("/v1/members/ann/tier:assign", json=ASSIGN)
        assert (no_key.status_code, no_key.json()["code"]) == (422, "invalid_request")
        assert c.get("/v1/members/ann/tier").json()["tier"] == "bronze"
    assert tier_rows(live) == []


def test_tier_of_an_unknown_member_is_not_found(live: Live) -> None:
    with live.client("analyst") as c:
        missing = c.get("/v1/members/nobody/tier")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_member")


def test_issue_coupons_to_a_member_and_replay_the_same_codes(live: Live) -> None:
    enrol(live, "ann")
    key = {"Idempotency-Key": "c1"}
    with live.client("admin") as c:
        made = c.post("/v1/coupon-campaigns/welcome/coupons", json={"count": 3, "member": "ann"},
                      headers=key)  # fmt: skip
        assert made.status_code == 201, made.text
        body = made.json()
        assert (body["campaign"], body["member"], len(set(body["codes"]))) == ("welcome", "ann", 3)
        assert all(parse_code(code) and code.startswith("WELC-") for code in body["codes"])
        again = c.post("/v1/coupon-campaigns/welcome/coupons",
                       json={"count": 3, "member": "ann"}, headers=key)  # fmt: skip
        assert (again.status_code, again.json()) == (201, body)
        other = c.post("/v1/coupon-campaigns/welcome/coupons", json={"count": 1}, headers=key)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert coupon_rows(live) == sorted((code, "welcome", "issued", "ann") for code in body["codes"])


@pytest.mark.parametrize(
    ("campaign", "body", "status", "code"),
    [
        ("nope", {"count": 2}, 404, "unknown_campaign"),
        ("welcome", {"count": 2, "member": "carol"}, 404, "unknown_member"),
        ("welcome", {"count": 0}, 422, "invalid_request"),
        ("welcome", {"count": 10_001}, 422, "invalid_request"),
        ("welcome", {"count": 2, "status": "used"}, 422, "invalid_request"),
    ],
)  # fmt: skip
def test_refused_coupon_issues_store_nothing(
    live: Live, campaign: str, body: dict[str, Any], status: int, code: str
) -> None:
    enrol(live, "ann")
    with live.client("admin") as c:
        refused = c.post(f"/v1/coupon-campaigns/{campaign}/coupons", json=body,
                         headers={"Idempotency-Key": "c1"})  # fmt: skip
        assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
        no_key = c.post("/v1/coupon-campaigns/welcome/coupons", json={"count": 1})
        assert (no_key.status_code, no_key.json()["code"]) == (422, "invalid_request")
    assert coupon_rows(live) == []


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_codes_answered_meanwhile_under_the_key_are_rolled_back(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    # A retry that took a slow request's key over (after the lease) and answered it: the
    # slow request's codes must not be stored beside the retry's.
    db: Database = make_database(backend, request, tmp_path)
    processor = EventProcessor(db, parse_program(PROGRAM))
    now = datetime.now(UTC)
    with db.write() as conn:
        conn.execute(insert(api_requests), {
            "program_id": "shop", "idem_key": "k", "route": "POST /v1/coupon-campaigns/x",
            "request_hash": "h", "state": "done", "status_code": 201, "body": {"codes": []},
            "created_at": now, "updated_at": now})  # fmt: skip
    with pytest.raises(ConcurrentUpdateError), db.write() as conn:
        codes = processor.issue_coupons("welcome", 5, at=now, conn=conn)
        store_answer(conn, "shop", "k", 201, {"codes": codes})
    with db.read() as conn:
        assert conn.execute(select(coupons.c.code)).all() == []
    db.dispose()
