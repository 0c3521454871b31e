"""A body sent without Content-Length (Transfer-Encoding: chunked) is held to
``--max-body-bytes`` as one with it: 413 payload_too_large, whichever route, nothing done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.api import Settings
from fidelite.api.keys import create_key
from tests.api.conftest import Live, start_server
from tests.conftest import BACKENDS, make_database

TOO_LARGE = {
    "type": "https://fidelite.dev/problems/payload_too_large", "title": "payload too large",
    "status": 413, "code": "payload_too_large", "detail": "the request body is over 2000 bytes",
}  # fmt: skip
EVENT = {"id": "e1", "type": "purchase", "member": "ann", "amount": "30",
         "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, Settings(max_body_bytes=2000))
    yield Live(url, db, {"admin": create_key(db, "shop", "admin")[1]})
    server.stop()
    db.dispose()


def chunked(body: object, size: int = 500) -> Iterator[bytes]:
    """``body`` as JSON in chunks: httpx sends an iterator without Content-Length."""
    raw = json.dumps(body).encode()
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def test_an_oversized_chunked_body_is_413(small: Live) -> None:
    member = {"id": "ann", "attributes": {"note": "x" * 5000}}
    batch = {"events": [{**EVENT, "id": f"e{n}"} for n in range(40)]}
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k1"}
    with small.client() as c:
        for path, body in (("/v1/members", member), ("/v1/events:batch", batch),
                           ("/v1/events", {**EVENT, "pad": "x" * 5000})):  # fmt: skip
            out = c.post(path, content=chunked(body), headers=headers)
            assert out.request.headers.get("transfer-encoding") == "chunked"
            assert "content-length" not in out.request.headers
            assert (out.status_code, out.headers["content-type"]) == (
                413, "application/problem+json"), path  # fmt: skip
            assert out.json() == TOO_LARGE
        assert small.ledger_rows() == 0
        assert c.get("/v1/members/ann").status_code == 404
        assert c.get("/v1/events/e1").status_code == 404
        # a chunked body within the limit is read whole, and the key was left free
        made = c.post("/v1/members", content=chunked({"id": "ann"}, 3), headers=headers)
        assert (made.status_code, made.json()["id"]) == (201, "ann")
        sent = c.post("/v1/events", content=chunked(EVENT, 7), headers={"Idempotency-Key": "k2"})
        assert (sent.status_code, sent.json()["points"]) == (201, {"points": 30})
        assert small.ledger_rows() == 1
