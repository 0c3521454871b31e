"""What every route refuses before reading a request's fields, over real HTTP on SQLite and
PostgreSQL, with nothing written: the NUL character (U+0000) in the body's text, a path
or a query parameter (PostgreSQL answered 500, SQLite stored it); a key given twice in
one JSON object (the last one silently won); true or numeric text for a whole number
(``{"points": true}`` credited 1 point); a path ending in ``/`` (a bare 307 to a URL
built from the Host header, before the key was checked); and a number of 5,000 digits,
worded alike on every route."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

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
    _refused(live, "POST", "/v1/events", "body.items.0.quantity", told("true"),
             _event(items=[{"sku": "A", "quantity": True, "price": "1"}]))  # fmt: skip
    _refused(live, "POST", "/v1/events", "body.items.0.quantity", told('"2"'),
             _event(items=[{"sku": "A", "quantity": "2", "price": "1"}]))  # fmt: skip
    with live.client() as c:  # a number is taken
        r = c.post("/v1/members/M1/adjustments", json={"points": 5, "reason": "r"},
                   headers={"Idempotency-Key": "five"})  # fmt: skip
        assert (r.status_code, r.json()["points"]) == (201, 5)
