"""A redemption refused from the catalogue (the program file) or the clock is not stored
under its Idempotency-Key: ``reward_unknown``, ``reward_not_yet_available``,
``reward_expired``. Nothing was spent, and once the operator adds the reward or its
validity opens, the retry with the same key redeems, once, as ``fidelite rewards redeem
--key`` does. Refusals that answer the member's or the ledger's state are still stored
and replayed. An answer of those three codes stored by an older version is not replayed:
the retry runs."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from fidelite.api.idempotency import request_hash
from fidelite.api.keys import create_key
from fidelite.api.tables import api_requests
from fidelite.processing.tables import redemptions
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction
from tests.api.conftest import Running, start_server

CATALOGUE = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: gold, name: Gold, threshold: 1000}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 10, stock: 1}
  - {id: tour, name: Tour, kind: experience, cost: 10, tiers: [gold]}
  - {id: trip, name: Trip, kind: experience, cost: 5000}
"""
LATER = "  - {id: later, name: Later, kind: voucher, cost: 10, valid_from: 2099-01-01T00:00:00Z}\n"
PAST = "  - {id: past, name: Past, kind: voucher, cost: 10, valid_until: 2026-09-01T00:00:00Z}\n"
OPEN = (
    "  - {id: later, name: Later, kind: voucher, cost: 10}\n"
    "  - {id: past, name: Past, kind: voucher, cost: 10}\n"
    "  - {id: new, name: New, kind: voucher, cost: 10}\n"
)
"""The operator's change: ``later`` opened, ``past`` extended, ``new`` added."""


def refusal(code: str, detail: str) -> dict[str, Any]:
    return {"type": f"https://fidelite.dev/problems/{code}", "title": code.replace("_", " "),
            "status": 422, "code": code, "detail": detail}  # fmt: skip


@dataclass
class Shop:
    """A server of a program on a database, restarted with another program by ``run``."""

    db: Database
    token: str
    server: Running | None = None

    def run(self, program: str) -> httpx.Client:
        if self.server is not None:
            self.server.stop()
        self.server, url = start_server(self.db, program=program)
        return httpx.Client(base_url=url, timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip

    def count(self, table: Any) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def stored(self) -> dict[str, tuple[str, int | None, str | None]]:
        """Each key's state, status and the code of a stored refusal."""
        with self.db.read() as conn:
            rows = conn.execute(select(api_requests)).all()
        return {r.idem_key: (r.state, r.status_code,
                             r.body["code"] if r.status_code and r.status_code >= 400 else None)
                for r in rows}  # fmt: skip


@pytest.fixture
def shop(db: Database) -> Iterator[Shop]:
    found = Shop(db, create_key(db, "shop", "admin")[1])
    yield found
    if found.server is not None:
        found.server.stop()


def redeem(c: httpx.Client, reward: str, key: str, member: str = "ann") -> httpx.Response:
    return c.post("/v1/redemptions", json={"member": member, "reward": reward},
                  headers={"Idempotency-Key": key})  # fmt: skip


def available(c: httpx.Client) -> int:
    return int(c.get("/v1/members/ann/balance").json()["balances"][0]["available"])


def test_a_catalogue_or_clock_refusal_frees_its_key_and_the_retry_redeems_once(
    shop: Shop,
) -> None:
    with shop.run(CATALOGUE + LATER + PAST) as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        credit = c.post("/v1/members/ann/adjustments", json={"points": 100, "reason": "x"},
                        headers={"Idempotency-Key": "credit"})  # fmt: skip
        assert credit.status_code == 201
        ledger_before = shop.count(LedgerTransaction)
        expected = {
            "later": refusal("reward_not_yet_available",
                             "cannot redeem 'later': available from 2099-01-01T00:00:00+00:00"),
            "past": refusal("reward_expired",
                            "cannot redeem 'past': available until 2026-09-01T00:00:00+00:00"),
            "new": refusal("reward_unknown", "cannot redeem 'new': no reward 'new' in the "
                           "catalogue (rewards: mug, tour, trip, later, past)"),
        }  # fmt: skip
        for reward, problem in expected.items():
            for _ in range(2):  # refused again, not replayed: the key is free
                refused = redeem(c, reward, f"k-{reward}")
                assert (refused.status_code, refused.json()) == (422, problem)
                assert "idempotent-replayed" not in refused.headers
        assert available(c) == 100
    # nothing spent, nothing issued, no key used up
    assert shop.stored() == {"credit": ("done", 201, None)}
    assert (shop.count(LedgerTransaction), shop.count(redemptions)) == (ledger_before, 0)
    with shop.run(CATALOGUE + OPEN) as c:
        for reward in ("later", "past", "new"):
            done = redeem(c, reward, f"k-{reward}")
            assert (done.status_code, done.json()["reward"], done.json()["points"]) == (
                201, reward, 10)  # fmt: skip
            assert (done.json()["status"], done.json()["replayed"]) == ("active", False)
            again = redeem(c, reward, f"k-{reward}")
            assert again.headers["idempotent-replayed"] == "true"
            assert (again.status_code, again.json()) == (201, {**done.json(), "replayed": True})
        assert available(c) == 70
    assert shop.count(redemptions) == 3
    assert shop.count(LedgerTransaction) == ledger_before + 3
    assert shop.stored() == {
        "credit": ("done", 201, None), "k-later": ("done", 201, None),
        "k-past": ("done", 201, None), "k-new": ("done", 201, None),
    }  # fmt: skip


def test_refusals_on_the_members_state_are_still_stored_and_replayed(shop: Shop) -> None:
    with shop.run(CATALOGUE) as c:
        for ref in ("ann", "bob"):
            assert c.post("/v1/members", json={"id": ref}).status_code == 201
        c.post("/v1/members/ann/adjustments", json={"points": 100, "reason": "x"},
               headers={"Idempotency-Key": "credit"})  # fmt: skip
        assert redeem(c, "mug", "bob-mug", member="bob").status_code == 422  # bob: no points
        c.post("/v1/members/bob/adjustments", json={"points": 100, "reason": "x"},
               headers={"Idempotency-Key": "credit-bob"})  # fmt: skip
        last_mug = redeem(c, "mug", "bob-mug-2", member="bob")
        assert last_mug.status_code == 201
        ledger_before = shop.count(LedgerTransaction)
        firsts = {
            key: redeem(c, reward, key)
            for key, reward in [("k-mug", "mug"), ("k-tour", "tour"), ("k-trip", "trip")]
        }
        firsts["k-ghost"] = redeem(c, "mug", "k-ghost", member="ghost")
        assert {k: r.json()["code"] for k, r in firsts.items()} == {
            "k-mug": "reward_out_of_stock", "k-tour": "reward_not_available_for_tier",
            "k-trip": "insufficient_points", "k-ghost": "unknown_member",
        }  # fmt: skip
        cancelled = c.post(f"/v1/redemptions/{last_mug.json()['id']}:cancel")
        assert cancelled.status_code == 200  # bob's mug back in stock
        for key, first in firsts.items():
            body = first.request.content
            again = c.post("/v1/redemptions", content=body, headers={
                "Idempotency-Key": key, "Content-Type": "application/json"})  # fmt: skip
            assert (again.status_code, again.json()) == (first.status_code, first.json())
            assert again.headers["idempotent-replayed"] == "true"
        assert available(c) == 100
    stored = shop.stored()
    assert {k: stored[k] for k in firsts} == {
        "k-mug": ("done", 422, "reward_out_of_stock"),
        "k-tour": ("done", 422, "reward_not_available_for_tier"),
        "k-trip": ("done", 422, "insufficient_points"),
        "k-ghost": ("done", 404, "unknown_member"),
    }  # fmt: skip
    # the cancellation wrote its own transaction; the replays wrote nothing
    assert shop.count(LedgerTransaction) == ledger_before + 1


def _stored_refusal(db: Database, key: str, reward: str, problem: dict[str, Any]) -> None:
    """The answer an older version stored for ``key``: a redemption of ``reward`` by ann
    refused with ``problem``."""
    at = datetime.now(UTC) - timedelta(days=1)
    digest = request_hash("POST /v1/redemptions", {"member": "ann", "reward": reward})
    with db.write() as conn:
        conn.execute(insert(api_requests), {
            "program_id": "shop", "idem_key": key, "route": "POST /v1/redemptions",
            "request_hash": digest, "state": "done", "status_code": problem["status"],
            "body": problem, "created_at": at, "updated_at": at,
        })  # fmt: skip


def test_a_catalogue_refusal_stored_by_an_older_version_is_run_again(shop: Shop) -> None:
    old = {
        "k-later": ("later", refusal("reward_not_yet_available", "cannot redeem 'later': "
                                     "available from 2026-12-01T00:00:00+00:00")),
        "k-past": ("past", refusal("reward_expired", "cannot redeem 'past': "
                                   "available until 2026-09-01T00:00:00+00:00")),
        "k-new": ("new", refusal("reward_unknown", "cannot redeem 'new': no reward 'new' in the "
                                 "catalogue (rewards: mug, tour, trip)")),
        "k-trip": ("trip", {**refusal("insufficient_points", "cannot redeem 'trip': member 'ann' "
                                      "has 0 points available, 5000 requested"),
                            "available": 0, "requested": 5000}),
    }  # fmt: skip
    for key, (reward, problem) in old.items():
        _stored_refusal(shop.db, key, reward, problem)
    with shop.run(CATALOGUE + OPEN) as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        c.post("/v1/members/ann/adjustments", json={"points": 100, "reason": "x"},
               headers={"Idempotency-Key": "credit"})  # fmt: skip
        for key in ("k-later", "k-past", "k-new"):
            done = redeem(c, old[key][0], key)
            assert "idempotent-replayed" not in done.headers
            assert (done.status_code, done.json()["reward"], done.json()["replayed"]) == (
                201, old[key][0], False)  # fmt: skip
            again = redeem(c, old[key][0], key)
            assert (again.status_code, again.json()) == (201, {**done.json(), "replayed": True})
        # a refusal on the ledger's state stored then is still replayed as it was
        trip = redeem(c, "trip", "k-trip")
        assert (trip.status_code, trip.json()) == (422, old["k-trip"][1])
        assert trip.headers["idempotent-replayed"] == "true"
        assert available(c) == 70
    assert shop.count(redemptions) == 3
    assert shop.stored() == {
        "credit": ("done", 201, None), "k-later": ("done", 201, None),
        "k-past": ("done", 201, None), "k-new": ("done", 201, None),
        "k-trip": ("done", 422, "insufficient_points"),
    }  # fmt: skip


def test_racing_retries_of_an_old_stored_refusal_redeem_once(shop: Shop) -> None:
    _stored_refusal(
        shop.db,
        "k",
        "new",
        refusal(
            "reward_unknown", "cannot redeem 'new': no reward 'new' in the catalogue (rewards: mug)"
        ),
    )
    with shop.run(CATALOGUE + OPEN) as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        c.post("/v1/members/ann/adjustments", json={"points": 100, "reason": "x"},
               headers={"Idempotency-Key": "credit"})  # fmt: skip
        url, token = str(c.base_url), shop.token

        def send(_: int) -> tuple[int, str | None, Any]:
            with httpx.Client(base_url=url, timeout=60) as one:
                out = one.post("/v1/redemptions", json={"member": "ann", "reward": "new"},
                               headers={"Authorization": f"Bearer {token}",
                                        "Idempotency-Key": "k"})  # fmt: skip
                return out.status_code, out.headers.get("idempotent-replayed"), out.json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(8)))
        assert available(c) == 90
    firsts = [a for a in answers if a[0] == 201 and a[1] is None]
    assert len(firsts) == 1
    for status, replayed, body in [a for a in answers if a is not firsts[0]]:
        assert (status, replayed, body) == (201, "true", {**firsts[0][2], "replayed": True}) or (
            status, body["code"]) == (409, "request_in_flight")  # fmt: skip
    assert (shop.count(redemptions), shop.stored()["k"]) == (1, ("done", 201, None))


def test_an_unknown_member_is_refused_before_an_unknown_reward(shop: Shop) -> None:
    """docs/program.md: the member is checked first (``unknown_member``, which answers the
    members' state, so it is stored and replayed), then the reward."""
    with shop.run(CATALOGUE) as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        ledger_before = shop.count(LedgerTransaction)
        refused = redeem(c, "yacht", "k-ghost", member="ghost")
        assert (refused.status_code, refused.json()) == (404, {
            "type": "https://fidelite.dev/problems/unknown_member", "title": "unknown member",
            "status": 404, "code": "unknown_member", "field": "member_ref",
            "detail": "no member 'ghost' in program 'shop'"})  # fmt: skip
        again = redeem(c, "yacht", "k-ghost", member="ghost")
        assert (again.status_code, again.json()) == (404, refused.json())
        assert again.headers["idempotent-replayed"] == "true"
    assert (shop.count(LedgerTransaction), shop.count(redemptions)) == (ledger_before, 0)
    assert shop.stored() == {"k-ghost": ("done", 404, "unknown_member")}
