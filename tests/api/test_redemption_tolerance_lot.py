"""A purchase dated a few minutes ahead, within the program's future tolerance (a till
clock running fast), earns points the member can redeem at once over real HTTP (SQLite
file and PostgreSQL): the redemption draws them, as the balance shows them, instead of
``insufficient_points`` "has 0 points available"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import Live


@pytest.mark.usefixtures("real_clock")
def test_points_of_a_purchase_dated_minutes_ahead_are_redeemable_now(live: Live) -> None:
    ahead = datetime.now(UTC) + timedelta(minutes=3)
    body = {"id": "p1", "type": "purchase", "member": "ann", "at": ahead.isoformat(),
            "amount": "150"}  # fmt: skip
    with live.client("admin") as c:
        earned = c.post("/v1/events", json=body, headers={"Idempotency-Key": "k1"})
        assert (earned.status_code, earned.json()["outcome"]) == (201, "processed")
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 150
        made = c.post("/v1/redemptions", json={"member": "ann", "reward": "mug"},
                      headers={"Idempotency-Key": "r1"})  # fmt: skip
        assert made.status_code == 201, made.json()
        assert (made.json()["status"], made.json()["points"]) == ("active", 100)
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 50
    assert live.ledger_rows() == 2
