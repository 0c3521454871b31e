"""A request the API cannot read is refused alike on every route: the caller is
authenticated first (401/403), a body sent as another media type than JSON is 415, a
body that is no JSON (broken, not UTF-8, nested too deeply) is ``422 invalid_request``
located at ``body``, and every ``invalid_request`` lists its fields in ``errors``."""

from __future__ import annotations

from typing import Any

import httpx

from fidelite.api.keys import create_key
from tests.api.conftest import Live
from tests.api.test_batch_rate_limit import stored_keys

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}
EVENT = {"id": "e1", "type": "purchase", "member": "ann", "amount": "30",
         "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip
# each route taking a JSON body, with a valid body for it
ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/members", {"id": "ann"}),
    ("/v1/events:batch", {"events": [EVENT]}),
    ("/v1/events", EVENT),
]
BROKEN = b'{"id": "ann",\n  "type": }'


def invalid(location: str, message: str) -> dict[str, Any]:
    return {"type": "https://fidelite.dev/problems/invalid_request",
            "title": "invalid request", "status": 422, "code": "invalid_request",
            "detail": f"{location}: {message}",
            "errors": [{"location": location, "message": message}]}  # fmt: skip


def problem(out: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert (out.status_code, out.headers["content-type"]) == (status, PROBLEM), out.text
    body: dict[str, Any] = out.json()
    assert body["code"] == code
    return body


def untouched(live: Live) -> None:
    assert live.ledger_rows() == 0 and stored_keys(live) == 0
    with live.client() as c:
        assert c.get("/v1/members").json()["members"] == []


def test_the_caller_is_authenticated_before_the_body_is_read(live: Live) -> None:
    outsider = {"Authorization": "Bearer fid_nope_nope"}
    with httpx.Client(base_url=live.url, timeout=30) as c:
        for path, _ in ROUTES:
            for body, headers in ((BROKEN, JSON), (b'{"id": "\xff"}', JSON),
                                  (b"[" * 3000 + b"]" * 3000, JSON),
                                  (b'{"id": "ann"}', {"Content-Type": "text/plain"})):  # fmt: skip
                for who in ({}, outsider):
                    out = c.post(path, content=body, headers={**headers, **who,
                                                              "Idempotency-Key": "k"})  # fmt: skip
                    problem(out, 401, "unauthenticated")
                    assert out.headers["www-authenticate"] == "Bearer"
    with live.client("analyst") as c:  # a role that may not write: 403, not 422
        for path, _ in ROUTES:
            problem(c.post(path, content=BROKEN, headers=JSON), 403, "forbidden")
    untouched(live)


def test_a_body_that_is_no_json_is_located_at_body(live: Live) -> None:
    with live.client("integration") as c:
        for path, _ in ROUTES:
            out = c.post(path, content=BROKEN, headers={**JSON, "Idempotency-Key": "k"})
            assert problem(out, 422, "invalid_request") == invalid(  # alike on every route
                "body", "the body is not valid JSON: expecting value at line 2 column 11"
            )
        for path in ("/v1/members", "/v1/events:batch"):
            out = c.post(path, content=b'{"id": "\xff"}', headers=JSON)
            assert problem(out, 422, "invalid_request") == invalid(
                "body", "the body is not valid JSON: it is not UTF-8 text (byte 0xff at "
                "offset 8)")  # fmt: skip
            out = c.post(path, content=b"[" * 3000 + b"]" * 3000, headers=JSON)
            assert problem(out, 422, "invalid_request") == invalid(
                "body", "the body is not valid JSON: it is nested too deeply"
            )
        out = c.post("/v1/events", content=b'{"id": "\xff"}', headers=JSON)
        assert problem(out, 422, "invalid_request")["errors"][0]["location"] == "body"
        out = c.post("/v1/events", content=b"[" * 3000 + b"]" * 3000, headers=JSON)
        assert problem(out, 422, "invalid_request")["errors"][0]["location"] == "body"
    untouched(live)


def test_a_body_sent_as_another_media_type_is_415(live: Live) -> None:
    with live.client("integration") as c:
        for path, body in ROUTES:
            for media in ("text/plain", "application/x-www-form-urlencoded"):
                out = c.post(path, json=body, headers={"Content-Type": media,
                                                       "Idempotency-Key": "k"})  # fmt: skip
                assert problem(out, 415, "unsupported_media_type")["detail"] == (
                    f"send the body as JSON with 'Content-Type: application/json', not "
                    f"'{media}'")  # fmt: skip
        untouched(live)
        # JSON is read as sent, with a charset, as a +json type, or with no Content-Type
        made = [c.post(path, content=httpx.Request("POST", "/", json=body).content,
                       headers=headers).status_code
                for (path, body), headers in zip(ROUTES, (
                    {"Content-Type": "application/json; charset=utf-8"},
                    {"Content-Type": "application/vnd.api+json"}, {}), strict=True)]  # fmt: skip
        assert made == [201, 200, 200]  # the batch's event first, then it again: duplicate
        assert live.ledger_rows() == 1


def test_every_invalid_request_lists_its_fields(live: Live) -> None:
    support = create_key(live.db, "shop", "support")[1]
    with live.client("integration") as c:
        c.post("/v1/members", json={"id": "ann"})
        out = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"})
        assert problem(out, 422, "invalid_request") == invalid(
            "header.Idempotency-Key", "required for redemptions"
        )
        out = c.post("/v1/events", json=EVENT, headers={"Idempotency-Key": "k" * 201})
        assert problem(out, 422, "invalid_request") == invalid(
            "header.Idempotency-Key", "1 to 200 bytes"
        )
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {support}"}) as c:
        out = c.post("/v1/members/ann/adjustments", json={"points": 0, "reason": "goodwill"},
                     headers={"Idempotency-Key": "a1"})  # fmt: skip
        assert problem(out, 422, "invalid_request") == {
            **invalid("body.points", "must not be 0"), "field": "points"}  # fmt: skip
    assert live.ledger_rows() == 0 and stored_keys(live) == 0
