"""Refusals of the request itself are not stored under its Idempotency-Key: an event
type, a currency the program does not offer (yet), a body or a value that is not valid.
Nothing was written, so once the operator adds what was missing (or the client fixes
the body) a retry with the same key runs and succeeds, exactly once, even when several
copies race. Refusals that answer the ledger's state are still replayed."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, update

from fidelite.api.idempotency import request_hash, run_once
from fidelite.api.keys import create_key
from fidelite.api.problems import Problem
from fidelite.api.tables import api_requests
from fidelite.engine import Event
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction
from tests.api.conftest import PROGRAM, Running, start_server

# the operator's fix: visits earn like purchases, and a second currency
FIXED = PROGRAM.replace("on: [purchase]", "on: [purchase, visit]").replace(
    "value: 0.01}\n", "value: 0.01}\n  - {id: stars, name: Stars, value: 0.01}\n", 1
)
VISIT = {"id": "v1", "type": "visit", "member": "ann", "amount": "50",
         "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip
STARS = {"points": 5, "reason": "welcome", "currency": "stars"}
UNKNOWN_TYPE = {
    "type": "https://fidelite.dev/problems/unknown_event_type", "title": "unknown event type",
    "status": 422, "code": "unknown_event_type",
    "detail": "unknown event type 'visit': this program handles purchase, refund, birthday, "
    "profile_completed, review, signup, social; a type to record without points is listed "
    "under 'events' in the program file",
}  # fmt: skip


@dataclass
class Shop:
    """A server of ``PROGRAM`` on a database, restarted with another program by ``run``."""

    db: Database
    token: str
    server: Running | None = None
    url: str = ""

    def run(self, program: str) -> httpx.Client:
        if self.server is not None:
            self.server.stop()
        self.server, self.url = start_server(self.db, program=program)
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip

    def count(self, table: Any) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def stored(self) -> dict[str, tuple[str, int | None]]:
        with self.db.read() as conn:
            rows = conn.execute(select(api_requests)).all()
        return {r.idem_key: (r.state, r.status_code) for r in rows}


@pytest.fixture
def shop(db: Database) -> Iterator[Shop]:
    found = Shop(db, create_key(db, "shop", "admin")[1])
    yield found
    if found.server is not None:
        found.server.stop()


def race(url: str, token: str, method: str, path: str, body: Any, key: str) -> list[Any]:
    """Eight copies of one request at once: (status, replayed header, body) of each."""

    def send(_: int) -> tuple[int, str | None, Any]:
        with httpx.Client(base_url=url, timeout=60) as c:
            out = c.request(method, path, json=body, headers={
                "Authorization": f"Bearer {token}", "Idempotency-Key": key})  # fmt: skip
            return out.status_code, out.headers.get("idempotent-replayed"), out.json()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(send, range(8)))


def test_unknown_event_type_is_not_stored_and_the_retry_applies_once(shop: Shop) -> None:
    with shop.run(PROGRAM) as c:
        refused = c.post("/v1/events", json=VISIT, headers={"Idempotency-Key": "k"})
        assert (refused.status_code, refused.json()) == (422, UNKNOWN_TYPE)
        assert "idempotent-replayed" not in refused.headers
    assert (shop.stored(), shop.count(LedgerTransaction)) == ({}, 0)
    with shop.run(FIXED) as c:
        applied = c.post("/v1/events", json=VISIT, headers={"Idempotency-Key": "k"})
        assert applied.status_code == 201
        answer = applied.json()
        assert (answer["outcome"], answer["points"]) == ("processed", {"points": 50})
        again = c.post("/v1/events", json=VISIT, headers={"Idempotency-Key": "k"})
        assert (again.status_code, again.json()) == (201, applied.json())
        assert again.headers["idempotent-replayed"] == "true"
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
    assert (balance["currency"], balance["available"]) == ("points", 50)
    assert (shop.stored(), shop.count(LedgerTransaction)) == ({"k": ("done", 201)}, 1)


def test_racing_retries_of_a_refused_event_apply_it_once(shop: Shop) -> None:
    with shop.run(PROGRAM) as c:
        assert c.post("/v1/events", json=VISIT, headers={"Idempotency-Key": "k"}).status_code == 422
    with shop.run(FIXED) as c:
        answers = race(shop.url, shop.token, "POST", "/v1/events", VISIT, "k")
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]["available"]
    firsts = [a for a in answers if a[0] == 201 and a[1] is None]
    assert len(firsts) == 1
    for status, replayed, body in [
        a for a in answers if a is not firsts[0]
    ]:  # the others: replayed, or told it is running
        assert (status, replayed, body) == (201, "true", firsts[0][2]) or (
            status, body["code"]) == (409, "request_in_flight")  # fmt: skip
    assert (balance, shop.count(LedgerTransaction)) == (50, 1)
    assert shop.stored() == {"k": ("done", 201)}


def test_unknown_currency_adjustment_is_not_stored_and_racing_retries_credit_once(
    shop: Shop,
) -> None:
    path = "/v1/members/ann/adjustments"
    with shop.run(PROGRAM) as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        refused = c.post(path, json=STARS, headers={"Idempotency-Key": "a"})
        assert (refused.status_code, refused.json()["code"]) == (422, "unknown_currency")
        again = c.post(path, json=STARS, headers={"Idempotency-Key": "a"})
        assert (again.status_code, again.json()) == (422, refused.json())
        assert "idempotent-replayed" not in again.headers
    assert (shop.stored(), shop.count(LedgerTransaction)) == ({}, 0)
    with shop.run(FIXED) as c:
        answers = race(shop.url, shop.token, "POST", path, STARS, "a")
        balances = c.get("/v1/members/ann/balance", params={"currency": "stars"}).json()
    firsts = [a for a in answers if a[0] == 201 and a[1] is None]
    assert len(firsts) == 1
    assert (firsts[0][2]["points"], firsts[0][2]["currency"]) == (5, "stars")
    for status, replayed, body in [a for a in answers if a is not firsts[0]]:
        # the first answer, saying it is a replay as the header does
        assert (status, replayed, body) == (201, "true", {**firsts[0][2], "replayed": True}) or (
            status, body["code"]) == (409, "request_in_flight")  # fmt: skip
    assert balances["balances"][0]["available"] == 5
    assert (shop.count(LedgerTransaction), shop.stored()) == (1, {"a": ("done", 201)})


def test_an_invalid_body_is_not_stored_and_the_corrected_one_runs(shop: Shop) -> None:
    path = "/v1/members/ann/adjustments"
    with shop.run(PROGRAM) as c:
        c.post("/v1/members", json={"id": "ann"})
        zero = c.post(path, json={"points": 0, "reason": "x"}, headers={"Idempotency-Key": "z"})
        assert (zero.status_code, zero.json()["code"]) == (422, "invalid_request")
        typed = c.post(path, json={"points": "many", "reason": "x"},
                       headers={"Idempotency-Key": "z"})  # fmt: skip
        assert (typed.status_code, typed.json()["code"]) == (422, "invalid_request")
        bad_event = c.post("/v1/events", json={**VISIT, "type": "purchase", "at": "soon"},
                           headers={"Idempotency-Key": "e"})  # fmt: skip
        assert (bad_event.status_code, bad_event.json()["code"]) == (422, "invalid_request")
        assert (shop.stored(), shop.count(LedgerTransaction)) == ({}, 0)
        fixed = c.post(path, json={"points": 7, "reason": "x"}, headers={"Idempotency-Key": "z"})
        event = c.post("/v1/events", json={**VISIT, "type": "purchase"},
                       headers={"Idempotency-Key": "e"})  # fmt: skip
        assert (fixed.status_code, fixed.json()["points"]) == (201, 7)
        assert (event.status_code, event.json()["points"]) == (201, {"points": 50})
    assert shop.stored() == {"z": ("done", 201), "e": ("done", 201)}
    assert shop.count(LedgerTransaction) == 2


def test_a_refusal_on_the_ledger_state_is_still_replayed(shop: Shop) -> None:
    body = {"member": "ann", "reward": "ten"}
    with shop.run(PROGRAM) as c:
        c.post("/v1/members", json={"id": "ann"})
        poor = c.post("/v1/redemptions", json=body, headers={"Idempotency-Key": "r"})
        assert (poor.status_code, poor.json()["code"]) == (422, "insufficient_points")
        c.post("/v1/members/ann/adjustments", json={"points": 50, "reason": "x"},
               headers={"Idempotency-Key": "a"})  # fmt: skip
        again = c.post("/v1/redemptions", json=body, headers={"Idempotency-Key": "r"})
        assert (again.status_code, again.json()) == (422, poor.json())
        assert again.headers["idempotent-replayed"] == "true"
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 50
    assert shop.stored() == {"r": ("done", 422), "a": ("done", 201)}


def test_a_crashed_requests_key_refused_on_takeover_is_freed(shop: Shop) -> None:
    """A key left ``in_flight`` by a crash, taken over after its lease by a request the
    program refuses (unknown type): the key is freed, not answered."""
    stale = datetime.now(UTC) - timedelta(minutes=5)
    digest = request_hash("POST /v1/events", Event.model_validate(VISIT).model_dump(mode="json"))
    with shop.db.write() as conn:
        conn.execute(insert(api_requests), {
            "program_id": "shop", "idem_key": "k", "route": "POST /v1/events",
            "request_hash": digest, "state": "in_flight", "created_at": stale,
            "updated_at": stale,
        })  # fmt: skip
    with shop.run(PROGRAM) as c:
        refused = c.post("/v1/events", json=VISIT, headers={"Idempotency-Key": "k"})
        assert (refused.status_code, refused.json()) == (422, UNKNOWN_TYPE)
    assert (shop.stored(), shop.count(LedgerTransaction)) == ({}, 0)
    with shop.run(FIXED) as c:
        applied = c.post("/v1/events", json=VISIT, headers={"Idempotency-Key": "k"})
        assert (applied.status_code, applied.json()["points"]) == (201, {"points": 50})
    assert (shop.stored(), shop.count(LedgerTransaction)) == ({"k": ("done", 201)}, 1)


def test_a_bulk_adjustment_in_an_unknown_currency_is_refused_whole_and_not_stored(
    shop: Shop,
) -> None:
    bulk = {**STARS, "members": ["ann", "bob"]}
    with shop.run(PROGRAM) as c:
        for ref in ("ann", "bob"):
            c.post("/v1/members", json={"id": ref})
        refused = c.post("/v1/adjustments:bulk", json=bulk, headers={"Idempotency-Key": "b"})
        assert (refused.status_code, refused.json()) == (422, {
            "type": "https://fidelite.dev/problems/unknown_currency",
            "title": "unknown currency", "status": 422, "code": "unknown_currency",
            "detail": "program 'shop' has no currency 'stars'", "field": "currency",
        })  # fmt: skip
        zero = c.post("/v1/adjustments:bulk", json={**bulk, "points": 0, "currency": None},
                      headers={"Idempotency-Key": "z"})  # fmt: skip
        assert (zero.status_code, zero.json()["code"]) == (422, "invalid_request")
    assert (shop.stored(), shop.count(LedgerTransaction)) == ({}, 0)
    with shop.run(FIXED) as c:
        answers = race(shop.url, shop.token, "POST", "/v1/adjustments:bulk", bulk, "b")
        balances = [c.get(f"/v1/members/{ref}/balance", params={"currency": "stars"}).json()
                    ["balances"][0]["available"] for ref in ("ann", "bob")]  # fmt: skip
    firsts = [a for a in answers if a[0] == 200 and a[1] is None]
    assert len(firsts) == 1
    assert (firsts[0][2]["credited"], firsts[0][2]["refused"]) == (2, 0)
    replay = {**firsts[0][2], "results": [{**r, "replayed": True}
                                          for r in firsts[0][2]["results"]]}  # fmt: skip
    for status, replayed, body in [a for a in answers if a is not firsts[0]]:
        assert (status, replayed, body) == (200, "true", replay) or (
            status, body["code"]) == (409, "request_in_flight")  # fmt: skip
    assert balances == [5, 5]
    assert (shop.count(LedgerTransaction), shop.stored()) == (2, {"b": ("done", 200)})


def test_a_bulk_adjustment_that_ran_is_replayed_after_its_currency_is_removed(
    shop: Shop,
) -> None:
    bulk = {**STARS, "members": ["ann", "bob"]}
    with shop.run(FIXED) as c:
        for ref in ("ann", "bob"):
            c.post("/v1/members", json={"id": ref})
        done = c.post("/v1/adjustments:bulk", json=bulk, headers={"Idempotency-Key": "b"})
        assert (done.status_code, done.json()["credited"]) == (200, 2)
    with shop.run(PROGRAM) as c:  # the operator has removed the currency since
        again = c.post("/v1/adjustments:bulk", json=bulk, headers={"Idempotency-Key": "b"})
        fresh = c.post("/v1/adjustments:bulk", json=bulk, headers={"Idempotency-Key": "c"})
    replay = {**done.json(), "results": [{**r, "replayed": True} for r in done.json()["results"]]}
    assert (again.status_code, again.headers.get("idempotent-replayed"), again.json()) == (
        200, "true", replay)  # fmt: skip
    assert (fresh.status_code, fresh.json()["code"]) == (422, "unknown_currency")
    assert (shop.count(LedgerTransaction), shop.stored()) == (2, {"b": ("done", 200)})


def test_a_refusal_frees_only_its_own_claim_of_the_key(db: Database) -> None:
    """A request slower than the lease, whose key another request took over meanwhile,
    is refused (not stored): the key stays the other request's (in flight), so a third
    copy cannot start beside it. A request refused with its own claim frees the key."""

    def refuse(took_over: bool) -> Any:
        def run() -> tuple[int, Any]:
            if took_over:  # a retry after the lease: the key's row is claimed anew
                later = datetime.now(UTC) + timedelta(seconds=1)
                with db.write() as conn:
                    conn.execute(update(api_requests)
                                 .where(api_requests.c.idem_key == "slow")
                                 .values(updated_at=later))  # fmt: skip
            raise Problem("unknown_currency", "program 'shop' has no currency 'stars'")

        return run

    def rows() -> dict[str, tuple[str, int | None]]:
        with db.read() as conn:
            return {r.idem_key: (r.state, r.status_code)
                    for r in conn.execute(select(api_requests))}  # fmt: skip

    own = run_once(db, "shop", "own", "POST /v1/adjustments:bulk", {}, refuse(False))
    assert (own.status_code, rows()) == (422, {})
    slow = run_once(db, "shop", "slow", "POST /v1/adjustments:bulk", {}, refuse(True))
    assert (slow.status_code, rows()) == (422, {"slow": ("in_flight", None)})
