"""Every route reads a body the same way (sent here without Content-Type: read as
JSON): a leading UTF-8 byte order mark is ignored, bytes that are not UTF-8 are ``not
UTF-8 text`` at their offset, and too deep a nesting is ``nested too deeply``; ``POST
/v1/events`` (its fast path and its FastAPI route) included, which parses its body
itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.api.keys import create_key
from tests.api.conftest import Live, start_server
from tests.conftest import BACKENDS, make_database

BOM = b"\xef\xbb\xbf"
EVENT = {"id": "E1", "type": "purchase", "member": "ann", "amount": "12.00",
         "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip
DEEP = b"[" * 5000 + b"]" * 5000


@pytest.fixture(params=BACKENDS)
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Live]]:
    """Two servers on one database: with the events fast path, and without."""
    db = make_database(request.param, request, tmp_path)
    fast, fast_url = start_server(db)
    plain, plain_url = start_server(db, events_fast_path=False)
    tokens = {"admin": create_key(db, "shop", "admin")[1]}
    yield [Live(fast_url, db, tokens), Live(plain_url, db, tokens)]
    fast.stop()
    plain.stop()
    db.dispose()


def body(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def refused(out: object, message: str) -> None:
    import httpx

    assert isinstance(out, httpx.Response)
    assert (out.status_code, out.headers["content-type"]) == (422, "application/problem+json")
    text = f"the body is not valid JSON: {message}"
    assert out.json() == {
        "type": "https://fidelite.dev/problems/invalid_request", "title": "invalid request",
        "status": 422, "code": "invalid_request", "detail": f"body: {text}",
        "errors": [{"location": "body", "message": text}],
    }  # fmt: skip


def test_every_route_reads_a_body_alike(servers: list[Live]) -> None:
    calls = [("/v1/events", EVENT, "E1"), ("/v1/members", {"id": "bob"}, "bob"),
             ("/v1/events:batch", {"events": [{**EVENT, "id": "E2"}]}, "E2")]  # fmt: skip
    for live in servers:
        with live.client("admin") as c:
            for url, value, name in calls:
                raw = body(value)
                cut = raw.index(name.encode()) + 1  # inside a string of the body
                bad = raw[:cut] + b"\xff" + raw[cut:]
                refused(c.post(url, content=bad), f"it is not UTF-8 text (byte 0xff at "
                        f"offset {cut})")  # fmt: skip
                refused(c.post(url, content=BOM + bad), f"it is not UTF-8 text (byte 0xff at "
                        f"offset {cut})")  # fmt: skip
                refused(c.post(url, content=DEEP), "it is nested too deeply")
        assert live.ledger_rows() == 0
    # a byte order mark is ignored, on every route and both ways of POST /v1/events
    for live, event_id in zip(servers, ("E1", "E3"), strict=True):
        with live.client("admin") as c:
            made = c.post("/v1/events", content=BOM + body({**EVENT, "id": event_id}))
            assert (made.status_code, made.json()["points"]) == (201, {"points": 12}), made.text
    with servers[0].client("admin") as c:
        member = c.post("/v1/members", content=BOM + body({"id": "bob"}))
        assert member.status_code == 201, member.text
        batch = c.post("/v1/events:batch", content=BOM + body({"events": [{**EVENT, "id": "E2"}]}))
        assert batch.json()["results"][0]["outcome"] == "processed", batch.text
    assert servers[0].ledger_rows() == 3


SYNTAX = [
    (b"[1,", "expecting value at line 1 column 4"),
    (b"{", "expecting property name enclosed in double quotes at line 1 column 2"),
    (b'{"a":1,}', "expecting property name enclosed in double quotes at line 1 column 8"),
    (b"\n\n  {x", "expecting property name enclosed in double quotes at line 3 column 4"),
    (b"nul", "expecting value at line 1 column 1"),
    (b"[1] x", "extra data at line 1 column 5"),
    (b"   ", "expecting value at line 1 column 4"),
    (BOM + b"[1,", "expecting value at line 1 column 4"),
]


def test_every_route_words_a_json_syntax_error_alike(servers: list[Live]) -> None:
    """POST /v1/events (both ways) in the words of the other routes: ``expecting value at
    line 1 column 4`` for ``[1,`` (it said ``EOF while parsing a value at line 1 column
    3``), and no body at all is ``body: Field required`` (it was ``not valid JSON``)."""
    for live in servers:
        with live.client("admin") as c:
            for url in ("/v1/events", "/v1/members", "/v1/events:batch"):
                for raw, message in SYNTAX:
                    refused(c.post(url, content=raw), message)
                empty = c.post(url, content=b"")
                assert (empty.status_code, empty.json()["errors"]) == (
                    422, [{"location": "body", "message": "Field required"}]), url  # fmt: skip
                assert empty.json()["detail"] == "body: Field required"
        assert live.ledger_rows() == 0
        with live.client("admin") as c:
            assert c.get("/v1/members/bob").status_code == 404
