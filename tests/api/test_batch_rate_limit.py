"""The rate limit counts events: a batch is charged its number of events, and a batch
larger than a full bucket (which could never pass) is refused whole, with nothing done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from fidelite.api import Settings
from fidelite.api.keys import create_key
from fidelite.api.tables import api_requests
from tests.api.conftest import Live, start_server
from tests.conftest import BACKENDS, make_database

PROBLEM = "application/problem+json"


def event(n: int) -> dict[str, str]:
    return {"id": f"e{n}", "type": "purchase", "member": "ann", "amount": "30",
            "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip


@pytest.fixture(params=BACKENDS)
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """A server whose keys may post 0.01 event per second, in bursts of 4: no token
    comes back during a test, however slow the machine."""
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, Settings(rate_per_second=0.01, rate_burst=4))
    tokens = {"integration": create_key(db, "shop", "integration")[1],
              "till2": create_key(db, "shop", "integration")[1]}  # fmt: skip
    yield Live(url, db, tokens)
    server.stop()
    db.dispose()


def stored_keys(live: Live) -> int:
    with live.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(api_requests)).scalar_one())


def refused(out: httpx.Response, message: str) -> None:
    assert (out.status_code, out.headers["content-type"]) == (422, PROBLEM)
    assert out.json() == {
        "type": "https://fidelite.dev/problems/invalid_request", "title": "invalid request",
        "status": 422, "code": "invalid_request", "detail": f"body.events: {message}",
        "errors": [{"location": "body.events", "message": message}],
    }  # fmt: skip


def test_a_batch_larger_than_the_burst_is_refused_whole(limited: Live) -> None:
    big = {"events": [event(n) for n in range(50)]}
    with limited.client("integration") as c:
        out = c.post("/v1/events:batch", json=big, headers={"Idempotency-Key": "b1"})
        refused(out, "at most 4 events per batch at this server's rate limit (0.01 events "
                "per second per key, bursts of 4); this one holds 50: send them in smaller "
                "batches")  # fmt: skip
        assert "retry-after" not in out.headers  # waiting would not help
        # nothing done, nothing charged, nothing stored under the key
        assert limited.ledger_rows() == 0 and stored_keys(limited) == 0
        assert c.get("/v1/members/ann").status_code == 404
        # the whole bucket is still there: a batch of 4 passes, under the same key
        four = {"events": [event(n) for n in range(4)]}
        ok = c.post("/v1/events:batch", json=four, headers={"Idempotency-Key": "b1"})
        assert ok.status_code == 200
        assert [r["outcome"] for r in ok.json()["results"]] == ["processed"] * 4
        assert limited.ledger_rows() == 4


def test_a_batch_is_charged_its_number_of_events(limited: Live) -> None:
    with limited.client("integration") as c:
        three = {"events": [event(n) for n in range(3)]}
        assert c.post("/v1/events:batch", json=three).status_code == 200
        # one token left: one event passes, the next batch of two and event do not
        assert c.post("/v1/events", json=event(3)).status_code == 201
        rows = limited.ledger_rows()
        two = c.post("/v1/events:batch", json={"events": [event(4), event(5)]})
        assert (two.status_code, two.json()["code"]) == (429, "rate_limited")
        assert 90 <= int(two.headers["retry-after"]) <= 201
        assert c.post("/v1/events", json=event(6)).status_code == 429
        assert limited.ledger_rows() == rows == 4
    with limited.client("till2") as c:  # another key has its own bucket
        assert c.post("/v1/events:batch", json={"events": [event(7)] * 4}).status_code == 200


def test_a_batch_over_the_most_events_names_the_field(live: Live) -> None:
    with live.client("integration") as c:
        out = c.post("/v1/events:batch", json={"events": [event(n) for n in range(1001)]},
                     headers={"Idempotency-Key": "big"})  # fmt: skip
        refused(out, "at most 1000 events per batch; this one holds 1001")
        assert live.ledger_rows() == 0 and stored_keys(live) == 0


def test_a_batch_over_both_limits_is_told_the_smaller_one(limited: Live) -> None:
    """Over the 1,000-event cap and over the bucket: the bucket's 4 is the limit a batch
    must keep to, so that is what the refusal says."""
    with limited.client("integration") as c:
        for size in (1000, 1001):
            out = c.post("/v1/events:batch", json={"events": [event(n) for n in range(size)]},
                         headers={"Idempotency-Key": f"big-{size}"})  # fmt: skip
            refused(out, "at most 4 events per batch at this server's rate limit (0.01 "
                    f"events per second per key, bursts of 4); this one holds {size}: send "
                    "them in smaller batches")  # fmt: skip
        assert limited.ledger_rows() == 0 and stored_keys(limited) == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_batch_cap_below_the_bucket_is_the_one_told(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = make_database(backend, request, tmp_path)
    server, url = start_server(db, Settings(rate_per_second=0.01, rate_burst=4, max_batch=2))
    try:
        live = Live(url, db, {"integration": create_key(db, "shop", "integration")[1]})
        with live.client("integration") as c:
            out = c.post("/v1/events:batch", json={"events": [event(n) for n in range(5)]})
            refused(out, "at most 2 events per batch; this one holds 5")
        assert live.ledger_rows() == 0
    finally:
        server.stop()
        db.dispose()
