"""The answer to a redemption, and to its cancellation, names the currency its points
were spent in, as the ledger recorded it: a reward priced in stars spends stars (the
program's second currency), and the answer says so, over real HTTP on a SQLite file and
PostgreSQL; the answer sent again with its key says the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.api.keys import ROLES, create_key
from tests.api.conftest import Live, start_server
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: stars, name: Stars, value: 0.05}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: star, on: [purchase], currency: stars, per_amount: {points: 1}}
rewards:
  - {id: ten, name: Ten points off, kind: discount_amount, value: 1, cost: 10}
  - {id: tour, name: Tour, kind: experience, cost: 30, currency: stars}
"""


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=PROGRAM)
    yield Live(url, db, {role: create_key(db, "shop", role)[1] for role in ROLES})
    server.stop()
    db.dispose()


def test_a_redemption_answer_names_the_currency_spent(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        for currency in ("points", "stars"):
            credit = c.post("/v1/members/ann/adjustments",
                            json={"points": 100, "reason": "seed", "currency": currency},
                            headers={"Idempotency-Key": f"seed-{currency}"})  # fmt: skip
            assert credit.status_code == 201, credit.text
        tour = c.post("/v1/redemptions", json={"member": "ann", "reward": "tour"},
                      headers={"Idempotency-Key": "t1"})  # fmt: skip
        ten = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"},
                     headers={"Idempotency-Key": "t2"})  # fmt: skip
        again = c.post("/v1/redemptions", json={"member": "ann", "reward": "tour"},
                       headers={"Idempotency-Key": "t1"})  # fmt: skip
        cancelled = c.post(f"/v1/redemptions/{tour.json()['id']}:cancel")
        balance = c.get("/v1/members/ann/balance").json()
    assert (tour.status_code, tour.json()["points"], tour.json()["currency"]) == (201, 30, "stars")
    assert (ten.status_code, ten.json()["points"], ten.json()["currency"]) == (201, 10, "points")
    assert (again.json()["replayed"], again.json()["currency"]) == (True, "stars")
    assert (cancelled.status_code, cancelled.json()["currency"]) == (200, "stars")
    assert cancelled.json()["status"] == "cancelled"
    by_currency = {b["currency"]: b["available"] for b in balance["balances"]}
    assert by_currency == {"points": 90, "stars": 100}
