"""Who redeemed, cancelled and used a redemption is recorded, as an adjustment's actor
is (``api-key:<key id>``), over real HTTP on a SQLite file and PostgreSQL: on the spend
and the reversing ledger transactions (the member's ledger shows them), and on the
redemption (``redeemed_by``, ``cancelled_by``, ``used_by``). A cancellation whose body
is no JSON is refused 422, changing nothing, as one with a key given twice was."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import Live
from tests.api.test_redemption_reads_and_use import everything, redeem, seed


def key_id(live: Live, role: str) -> str:
    return live.tokens[role].split("_")[1]


def ledger_line(c: httpx.Client, member: str, transaction_id: int) -> dict[str, Any]:
    entries = c.get(f"/v1/members/{member}/ledger").json()["entries"]
    return next(e for e in entries if e["transaction_id"] == transaction_id)


def test_redeem_cancel_and_use_name_the_key_that_did_them(live: Live) -> None:
    till, support = f"api-key:{key_id(live, 'integration')}", f"api-key:{key_id(live, 'support')}"
    seed(live, "ann", 500)
    with live.client("integration") as c:
        first = redeem(c, "ann", "ten", "r1")
        second = redeem(c, "ann", "ten", "r2")
    with live.client("support") as c:
        done = c.post(f"/v1/redemptions/{first['id']}:cancel")
        assert done.status_code == 200, done.text
        cancel_tx = c.get(f"/v1/redemptions/{first['id']}").json()["cancel_transaction_id"]
    with live.client("integration") as c:
        used = c.post(f"/v1/redemptions/{second['id']}:use", json={"store": "paris-04"},
                      headers={"Idempotency-Key": "u1"})  # fmt: skip
        assert used.status_code == 200, used.text
        assert (used.json()["redeemed_by"], used.json()["used_by"]) == (till, till)
    with live.client("admin") as c:
        spend = ledger_line(c, "ann", first["transaction_id"])
        back = ledger_line(c, "ann", cancel_tx)
        assert (spend["kind"], spend["reason"], spend["actor"]) == ("spend", "reward ten", till)
        assert (back["reason"], back["actor"]) == (f"redemption {first['id']} cancelled", support)
        one = c.get(f"/v1/redemptions/{first['id']}").json()
        two = c.get(f"/v1/redemptions/{second['id']}").json()
        page = c.get("/v1/members/ann/redemptions").json()["redemptions"]
    assert (one["redeemed_by"], one["cancelled_by"], one["used_by"]) == (till, support, None)
    assert (two["redeemed_by"], two["cancelled_by"], two["used_by"]) == (till, None, till)
    assert [(r["id"], r["redeemed_by"], r["cancelled_by"], r["used_by"]) for r in page] == [
        (second["id"], till, None, till),
        (first["id"], till, support, None),
    ]


def test_a_cancellation_whose_body_is_no_json_changes_nothing(live: Live) -> None:
    seed(live, "bob", 500)
    with live.client("integration") as c:
        made = redeem(c, "bob", "ten", "r1")
    before = everything(live)
    with live.client("support") as c:
        for body in (b'{"x":', b"not json"):
            refused = c.post(f"/v1/redemptions/{made['id']}:cancel", content=body,
                             headers={"Content-Type": "application/json",
                                      "Idempotency-Key": "c1"})  # fmt: skip
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "invalid_request"
        assert everything(live) == before
        assert c.get(f"/v1/redemptions/{made['id']}").json()["status"] == "active"
        # an empty body and a JSON one are read as before: the cancellation is done
        done = c.post(f"/v1/redemptions/{made['id']}:cancel", content=b"{}",
                      headers={"Content-Type": "application/json"})  # fmt: skip
        assert (done.status_code, done.json()["status"]) == (200, "cancelled")
