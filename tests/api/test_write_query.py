"""A write refuses a query parameter it does not take, as a read does (422
``invalid_request`` at ``query.<name>``), and changes nothing: ``?dry_run=1`` on an
adjustment credited the member for real. ``POST /v1/events``, answered before FastAPI's
routing (:mod:`fidelite.api.fastpath`) or by its route, refuses it the same way, and
names a lone surrogate of its body at its field as the other routes do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fidelite.api.keys import create_key
from tests.api.conftest import Live, start_server
from tests.api.test_fastpath import purchase
from tests.conftest import BACKENDS, make_database

NONE = "not a parameter of this route (it takes: none)"


def refusal(*errors: tuple[str, str]) -> dict[str, object]:
    """The 422 body listing ``errors`` (location, message), the first one as detail."""
    return {"type": "https://fidelite.dev/problems/invalid_request",
            "title": "invalid request", "status": 422, "code": "invalid_request",
            "detail": f"{errors[0][0]}: {errors[0][1]}",
            "errors": [{"location": at, "message": said} for at, said in errors]}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Live, Live]]:
    """Two servers on one database: with the fast path of ``POST /v1/events``, without."""
    db = make_database(request.param, request, tmp_path)
    fast, fast_url = start_server(db)
    plain, plain_url = start_server(db, events_fast_path=False)
    tokens = {"integration": create_key(db, "shop", "integration")[1]}
    yield Live(fast_url, db, tokens), Live(plain_url, db, tokens)
    fast.stop()
    plain.stop()
    db.dispose()


def balance(c: httpx.Client, member: str) -> int:
    return int(c.get(f"/v1/members/{member}/balance").json()["balances"][0]["available"])


def test_a_write_refuses_a_query_parameter_and_changes_nothing(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        rows, key = live.ledger_rows(), {"Idempotency-Key": "dry-1"}
        url, body = "/v1/members/ann/adjustments", {"points": 500, "reason": "goodwill"}
        dry = c.post(url, params={"dry_run": "1"}, json=body, headers=key)
        assert (dry.status_code, dry.json()) == (422, refusal(("query.dry_run", NONE)))
        assert dry.headers["content-type"] == "application/problem+json"
        assert (live.ledger_rows(), balance(c, "ann")) == (rows, 0)
        # the query's errors first, then the body's text (a key given twice)
        twice = c.post(url, params={"dry_run": "1"}, headers=key,
                       content=b'{"points": 5, "points": 500, "reason": "r"}')  # fmt: skip
        message = ("the key 'points' is given more than once in this object: give each "
                   "key once (a JSON reader would keep only the last)")  # fmt: skip
        assert twice.json() == refusal(("query.dry_run", NONE), ("body.points", message))
        renamed = c.patch("/v1/members/ann", params={"id": "bob"}, json={"segments": ["x"]})
        assert (renamed.status_code, renamed.json()) == (422, refusal(("query.id", NONE)))
        erased = c.delete("/v1/members/ann", params={"soft": "1"})
        assert (erased.status_code, erased.json()) == (422, refusal(("query.soft", NONE)))
        member = c.get("/v1/members/ann").json()
        assert (member["id"], member["segments"]) == ("ann", [])
        assert (live.ledger_rows(), balance(c, "ann")) == (rows, 0)
        # the key was not spent: the same request without the query is applied once
        real = c.post(url, json=body, headers=key)
        assert (real.status_code, real.json()["replayed"]) == (201, False)
        assert balance(c, "ann") == 500
    with live.client(None) as anonymous:  # the key is checked first
        assert anonymous.post(url, params={"dry_run": "1"}, json=body).status_code == 401


def test_an_event_with_a_query_is_refused_by_both_paths(pair: tuple[Live, Live]) -> None:
    for live, prefix in zip(pair, ("fast", "plain"), strict=True):
        with live.client("integration") as c:
            event = purchase(f"{prefix}-1")
            rows = live.ledger_rows()
            dry = c.post("/v1/events", params={"dry_run": "1"}, json=event)
            assert (dry.status_code, dry.json()) == (422, refusal(("query.dry_run", NONE)))
            nul = c.post("/v1/events?x=%00", json=event)
            told = "must not hold U+0000 (NUL): no text the API keeps can carry it"
            assert (nul.status_code, nul.json()) == (422, refusal(("query.x", told)))
            empty = c.post("/v1/events?dry_run=1")  # no body: the query is told first
            assert empty.json() == refusal(("query.dry_run", NONE))
            assert live.ledger_rows() == rows
            # the event id stayed free: sent without the query, it is processed
            applied = c.post("/v1/events", json=event)
            assert (applied.status_code, applied.json()["outcome"]) == (201, "processed")
        with live.client(None) as anonymous:
            refused = anonymous.post("/v1/events", params={"dry_run": "1"}, json=event)
            assert refused.status_code == 401


def test_a_lone_surrogate_in_an_event_is_named_at_its_field(pair: tuple[Live, Live]) -> None:
    half = ("must be text UTF-8 can encode: character 4 is a lone surrogate (U+D800), "
            "half of a character")  # fmt: skip
    for live, prefix in zip(pair, ("fast", "plain"), strict=True):
        with live.client("integration") as c:
            raw = json.dumps(purchase(f"{prefix}-s")).replace(f'"ann-{prefix}-s"', '"ann\\ud800"')
            rows = live.ledger_rows()
            out = c.post("/v1/events", content=raw)
            assert (out.status_code, out.json()) == (422, refusal(("body.member", half)))
            assert live.ledger_rows() == rows
