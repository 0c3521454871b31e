"""What every route refuses before reading a request's fields, over real HTTP on SQLite and
PostgreSQL, with nothing written: the NUL character (U+0000) in the body's text, a path
or a query parameter (PostgreSQL answered 500, SQLite stored it); a key given twice in
one JSON object (the last one silently won); true or numeric text for a whole number
(``{"points": true}`` credited 1 point); a path ending in ``/`` (a bare 307 to a URL
built from the Host header, before the key was checked); and a number of 5,000 digits,
worded alike on every route."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from fidelite.engine import Event
from fidelite.engine.event import read_attributes
from fidelite.processing.tables import coupons, events, member_states, redemptions
from fidelite.store.tables import IdempotencyRecord, Member
from tests.api.conftest import Live

AT = "2026-11-06T10:00:00+01:00"
NUL_MESSAGE = "must not hold U+0000 (NUL): no text the API keeps can carry it"


def _written(live: Live) -> tuple[int, ...]:
    """Rows of members, program states, events, coupons, redemptions, stored answers
    and ledger transactions."""
    tables = (Member.__table__, member_states, events, coupons, redemptions,
              IdempotencyRecord.__table__)  # fmt: skip
    with live.db.read() as conn:
        counts = [conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables]
    return (*counts, live.ledger_rows())


def _event(**fields: Any) -> dict[str, Any]:
    return {"id": "e1", "type": "purchase", "member": "M1", "at": AT, "amount": "10", **fields}


def _setup(live: Live) -> None:
    with live.client() as c:
        assert c.post("/v1/members", json={"id": "M1"}).status_code == 201
        assert c.post("/v1/events", json=_event(id="p1")).status_code == 201
        r = c.post("/v1/members/M1/adjustments", json={"points": 100, "reason": "start"},
                   headers={"Idempotency-Key": "start"})  # fmt: skip
        assert r.status_code == 201, r.text


def _refused(live: Live, method: str, path: str, location: str, message: str,
             body: Any = None, content: str | None = None) -> None:  # fmt: skip
    before = _written(live)
    with live.client() as c:
        r = c.request(method, path, json=body, content=content,
                      headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert r.status_code == 422, (method, path, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "invalid_request", r.text
    assert {"location": location, "message": message} in problem["errors"], r.text
    assert _written(live) == before, (method, path)


def test_a_path_ending_in_a_slash_is_not_found(live: Live) -> None:
    for role in ("admin", None):
        with live.client(role=role) as c:
            r = c.get("/v1/members/", headers={"Host": "evil.example"})
        assert r.status_code == 404, r.text
        assert "location" not in r.headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "not_found"


def test_whole_numbers_are_numbers(live: Live) -> None:
    _setup(live)

    def told(got: str) -> str:
        return f"must be a whole number written as a number (not true/false or text), got {got}"

    for points, got in ((True, "true"), ("5", '"5"'), (False, "false")):
        _refused(live, "POST", "/v1/members/M1/adjustments", "body.points", told(got),
                 {"points": points, "reason": "r"})  # fmt: skip
        _refused(live, "POST", "/v1/adjustments:bulk", "body.points", told(got),
                 {"points": points, "reason": "r", "members": ["M1"]})  # fmt: skip
    _refused(live, "POST", "/v1/coupon-campaigns/welcome/coupons", "body.count", told("true"),
             {"count": True})  # fmt: skip
    _refused(live, "POST", "/v1/events", "body.items.0.quantity",
             "must be a whole number, not true/false, got true",
             _event(items=[{"sku": "A", "quantity": True, "price": "1"}]))  # fmt: skip
    with live.client() as c:  # a number is taken
        r = c.post("/v1/members/M1/adjustments", json={"points": 5, "reason": "r"},
                   headers={"Idempotency-Key": "five"})  # fmt: skip
        assert (r.status_code, r.json()["points"]) == (201, 5)


NUL_BODIES: list[tuple[str, str, Any, str, str]] = [
    ("POST", "/v1/events", _event(id="A\x00B"), "body.id", NUL_MESSAGE),
    ("POST", "/v1/events", _event(type="refund", refund_of="p\x00"), "body.refund_of",
     NUL_MESSAGE),
    ("POST", "/v1/events", _event(coupon="WELC\x00"), "body.coupon", NUL_MESSAGE),
    ("POST", "/v1/events", _event(channel="web\x00"), "body.channel", NUL_MESSAGE),
    ("POST", "/v1/events", _event(store="s\x00"), "body.store", NUL_MESSAGE),
    ("POST", "/v1/events", _event(items=[{"sku": "A\x00", "price": "1"}]), "body.items.0.sku",
     NUL_MESSAGE),
    ("POST", "/v1/events", _event(items=[{"sku": "A", "category": "c\x00", "price": "1"}]),
     "body.items.0.category", NUL_MESSAGE),
    ("POST", "/v1/events", _event(attributes={"k": "v\x00"}), "body.attributes.k", NUL_MESSAGE),
    ("POST", "/v1/members/M1/adjustments", {"points": 5, "reason": "r\x00"}, "body.reason",
     NUL_MESSAGE),
    ("POST", "/v1/adjustments:bulk", {"points": 5, "reason": "r\x00", "members": ["M1"]},
     "body.reason", NUL_MESSAGE),
    ("POST", "/v1/adjustments:bulk", {"points": 5, "reason": "r", "members": ["M1", "M\x00"]},
     "body.members.1", NUL_MESSAGE),
    ("POST", "/v1/members/M1/tier:assign", {"tier": "silver", "reason": "r\x00"}, "body.reason",
     NUL_MESSAGE),
    ("POST", "/v1/redemptions", {"member": "M\x00", "reward": "ten"}, "body.member",
     NUL_MESSAGE),
    ("POST", "/v1/redemptions", {"member": "M1", "reward": "ten\x00"}, "body.reward",
     NUL_MESSAGE),
    ("POST", "/v1/coupon-campaigns/welcome/coupons", {"count": 1, "member": "M\x00"},
     "body.member", NUL_MESSAGE),
    ("POST", "/v1/members", {"id": "M2", "segments": ["vip\x00"]}, "body.segments.0",
     NUL_MESSAGE),
    ("POST", "/v1/members", {"id": "M2", "attributes": {"a": "x\x00"}}, "body.attributes.a",
     NUL_MESSAGE),
    ("PATCH", "/v1/members/M1", {"attributes": {"a\x00": "x"}}, "body.attributes.a\x00",
     f"the name 'a\\x00' {NUL_MESSAGE}"),
]  # fmt: skip

NUL_PATHS: list[tuple[str, str, Any, str]] = [
    ("GET", "/v1/members/A%00B", None, "path.member_id"),
    ("GET", "/v1/members/A%00B/balance", None, "path.member_id"),
    ("GET", "/v1/members/A%00B/ledger", None, "path.member_id"),
    ("GET", "/v1/members/A%00B/timeline", None, "path.member_id"),
    ("GET", "/v1/members/A%00B/tier", None, "path.member_id"),
    ("GET", "/v1/members/A%00B/export", None, "path.member_id"),
    ("PATCH", "/v1/members/A%00B", {"segments": []}, "path.member_id"),
    ("DELETE", "/v1/members/A%00B", None, "path.member_id"),
    ("POST", "/v1/members/A%00B/adjustments", {"points": 5, "reason": "r"}, "path.member_id"),
    ("POST", "/v1/members/A%00B/tier:assign", {"tier": "silver", "reason": "r"},
     "path.member_id"),
    ("GET", "/v1/events/A%00B", None, "path.event_id"),
    ("POST", "/v1/coupon-campaigns/A%00B/coupons", {"count": 1}, "path.campaign_id"),
    ("GET", "/v1/members?cursor=%00", None, "query.cursor"),
]  # fmt: skip


def test_nul_refused_naming_the_field(live: Live) -> None:
    _setup(live)
    for method, path, body, location, message in NUL_BODIES:
        _refused(live, method, path, location, message, body)
    for method, path, body, location in NUL_PATHS:
        _refused(live, method, path, location, NUL_MESSAGE, body)
    # the same with another code point is accepted: a NUL, not the field, is refused
    with live.client() as c:
        assert c.post("/v1/events", json=_event(id="A\x01B")).status_code == 201


def test_nul_in_one_event_of_a_batch_rejects_that_event(live: Live) -> None:
    _setup(live)
    batch = {"events": [_event(id="b1"), _event(id="b\x002", store="s")]}
    with live.client() as c:
        r = c.post("/v1/events:batch", json=batch)
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert (first["event_id"], first["outcome"]) == ("b1", "processed")
    assert (second["outcome"], second["problem"]["code"]) == ("rejected", "invalid_event")
    assert second["problem"]["errors"] == [{"location": "body.events.1.id",
                                            "message": NUL_MESSAGE}]  # fmt: skip
    with live.db.read() as conn:
        ids = set(conn.execute(select(events.c.event_id)).scalars())
    assert ids == {"p1", "b1"}


def test_imports_refuse_nul_as_the_api_does() -> None:
    """Both imports validate with the API's models: an event or an attribute with NUL."""
    with pytest.raises(ValidationError) as caught:
        Event.model_validate(_event(store="s\x00", items=[{"sku": "A", "category": "\x00",
                                                           "price": "1"}]))  # fmt: skip
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (("store",), NUL_MESSAGE), (("items", 0, "category"), NUL_MESSAGE)]  # fmt: skip
    with pytest.raises(ValueError, match=f"^attributes.a: {re.escape(NUL_MESSAGE)}$"):
        read_attributes({"a": "x\x00"})


def test_a_key_given_twice_is_refused(live: Live) -> None:
    _setup(live)
    twice = "the key 'member' is given more than once in this object: give each key once " \
            "(a JSON reader would keep only the last)"  # fmt: skip
    _refused(live, "POST", "/v1/redemptions", "body.member", twice,
             content='{"member": "M1", "reward": "ten", "member": "M2"}')  # fmt: skip
    points_twice = twice.replace("'member'", "'points'")
    _refused(live, "POST", "/v1/members/M1/adjustments", "body.points", points_twice,
             content='{"points": 1, "reason": "r", "points": 1000}')  # fmt: skip
    event = json.dumps(_event(id="b1"))[:-1] + ', "member": "M2"}'
    _refused(live, "POST", "/v1/events:batch", "body.events.0.member", twice,
             content='{"events": [' + event + "]}")  # fmt: skip
    _refused(live, "POST", "/v1/events", "body.member", twice, content=event)
    # nothing about the body before the key: 401 to a caller without one
    with live.client(role=None) as c:
        r = c.post("/v1/redemptions", content='{"member": "M1", "member": "M2"}')
    assert r.status_code == 401


def test_a_number_too_long_is_worded_alike(live: Live) -> None:
    body = '{"id": ' + "9" * 5000 + "}"
    with live.client() as c:
        details = {c.post(path, content=body).json()["detail"]
                   for path in ("/v1/events", "/v1/members", "/v1/redemptions")}  # fmt: skip
    assert details == {"body: the body is not valid JSON: number out of range at line 1 "
                       "column 4309"}  # fmt: skip
