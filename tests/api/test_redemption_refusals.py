"""A refused redemption says why, over real HTTP (SQLite file and PostgreSQL): the
member's tier and the tiers allowed, the stock, the per-member limit, the validity
dates, the points short, the unknown reward; and a refusal changes nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select

from fidelite.api import Settings, create_app
from fidelite.api.keys import create_key
from fidelite.processing.tables import redemptions
from fidelite.program import parse_program
from tests.api.conftest import Live, Running, free_port
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: roastery_tour, name: Roastery tour, kind: experience, cost: 10, tiers: [silver, gold]}
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 10, stock: 1}
  - {id: cup, name: Cup, kind: free_product, sku: CUP, cost: 10, per_member_limit: 1}
  - {id: summer, name: Summer, kind: voucher, cost: 10, valid_until: "2026-09-01T00:00:00+02:00"}
  - {id: future, name: Future, kind: voucher, cost: 10, valid_from: "2099-01-01T00:00:00Z"}
  - {id: trip, name: Trip, kind: experience, cost: 5000}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 1000}
    - {id: gold, name: Gold, threshold: 5000}
"""


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    app = create_app(db.url, parse_program(PROGRAM), Settings())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    yield Live(f"http://127.0.0.1:{port}", db, {"admin": create_key(db, "shop", "admin")[1]})
    Running(server, thread).stop()
    db.dispose()


def refusal(code: str, detail: str) -> dict[str, Any]:
    return {"type": f"https://fidelite.dev/problems/{code}", "title": code.replace("_", " "),
            "status": 422, "code": code, "detail": detail}  # fmt: skip


def balances(c: Any) -> list[dict[str, Any]]:
    """ann's balances without their as_of (the time of the request)."""
    body = c.get("/v1/members/ann/balance").json()["balances"]
    return [{k: v for k, v in b.items() if k != "as_of"} for b in body]


def test_each_refused_redemption_names_its_cause_and_changes_nothing(live: Live) -> None:
    with live.client() as c:
        bought = {"id": "p1", "type": "purchase", "member": "ann",
                  "at": "2026-11-20T10:00:00+01:00", "amount": "50"}  # fmt: skip
        assert c.post("/v1/events", json=bought).status_code == 201

        def redeem(reward: str, key: str) -> Any:
            return c.post("/v1/redemptions", json={"member": "ann", "reward": reward},
                          headers={"Idempotency-Key": key})  # fmt: skip

        assert redeem("mug", "k-mug").status_code == 201
        assert redeem("cup", "k-cup").status_code == 201
        rows, balance = live.ledger_rows(), balances(c)
        with live.db.read() as conn:
            count = select(func.count()).select_from(redemptions)
            held = conn.execute(count).scalar_one()
        cases = [
            ("roastery_tour", refusal("reward_not_available_for_tier",
             "cannot redeem 'roastery_tour': member 'ann' has tier 'bronze'; "
             "for tiers silver, gold only")),
            ("mug", refusal("reward_out_of_stock", "cannot redeem 'mug': out of stock, "
             "all 1 redeemed")),
            ("cup", refusal("reward_limit_reached", "cannot redeem 'cup': member 'ann' has "
             "redeemed it 1 time(s), the limit per member is 1 (over the reward's lifetime, "
             "cancelled redemptions not counted)")),
            ("summer", refusal("reward_expired",
             "cannot redeem 'summer': available until 2026-08-31T22:00:00+00:00")),
            ("future", refusal("reward_not_yet_available",
             "cannot redeem 'future': available from 2099-01-01T00:00:00+00:00")),
            ("trip", {**refusal("insufficient_points", "cannot redeem 'trip': member 'ann' has "
             "30 points available, 5000 requested"), "available": 30, "requested": 5000}),
            ("yacht", refusal("reward_unknown", "cannot redeem 'yacht': no reward 'yacht' in "
             "the catalogue (rewards: roastery_tour, mug, cup, summer, future, trip)")),
        ]  # fmt: skip
        for reward, expected in cases:
            refused = redeem(reward, f"k2-{reward}")
            assert (refused.status_code, refused.json()) == (422, expected)
        assert live.ledger_rows() == rows
        assert balances(c) == balance
        with live.db.read() as conn:
            assert conn.execute(count).scalar_one() == held == 2
