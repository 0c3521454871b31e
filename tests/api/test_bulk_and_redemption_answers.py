"""What the API answers for a bulk adjustment, a redemption sent again and the catalogue.

A bulk adjustment that is not valid (a segment name members could not have, a blank
reason, a member listed twice, nobody listed) is refused whole with 422 naming the
field: nothing credited, nothing stored under its Idempotency-Key, so the corrected
request may use the key. A redemption sent again with its key answers the redemption
as it is now (cancelled since: ``"status": "cancelled"``), as the CLI does. Bulk
adjustments are for admin keys only, as the roles table says. The catalogue gives each
reward's currency resolved, as ``fidelite rewards list`` does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fidelite.api.tables import api_requests
from tests.api.conftest import Live

BULK = "/v1/adjustments:bulk"


def stored_keys(live: Live) -> set[str]:
    with live.db.read() as conn:
        return {r.idem_key for r in conn.execute(select(api_requests)).all()}


def available(c: Any, member: str) -> int:
    return int(c.get(f"/v1/members/{member}/balance").json()["balances"][0]["available"])


def invalid(location: str, message: str) -> dict[str, Any]:
    return {
        "type": "https://fidelite.dev/problems/invalid_request", "title": "invalid request",
        "status": 422, "code": "invalid_request", "detail": f"{location}: {message}",
        "errors": [{"location": location, "message": message}],
    }  # fmt: skip


PATTERN = "String should match pattern '^[a-z][a-z0-9_]*$'"


def test_a_bulk_adjustment_not_valid_is_refused_whole_and_frees_its_key(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann", "segments": ["vip"]}).status_code == 201
        assert c.post("/v1/members", json={"id": "bob"}).status_code == 201
        before, keys = live.ledger_rows(), stored_keys(live)
        cases = [
            ({"points": 5, "reason": "outage", "segment": "VIP"}, "body.segment", PATTERN),
            ({"points": 5, "reason": "outage", "segment": "v ip"}, "body.segment", PATTERN),
            ({"points": 5, "reason": "   ", "members": ["ann"]}, "body.reason",
             "Value error, must not be blank"),
            ({"points": 5, "reason": "\t", "segment": "vip"}, "body.reason",
             "Value error, must not be blank"),
            ({"points": 5, "reason": "outage", "members": ["ann", "bob", "ann"]},
             "body.members", "Value error, listed more than once: ann"),
            ({"points": 5, "reason": "outage", "members": []}, "body.members",
             "List should have at least 1 item after validation, not 0"),
            ({"points": 0, "reason": "outage", "segment": "vip"}, "body.points",
             "Input should be greater than 0"),
        ]  # fmt: skip
        for body, location, message in cases:
            answer = c.post(BULK, json=body, headers={"Idempotency-Key": "outage-1"})
            assert (answer.status_code, answer.json()) == (422, invalid(location, message)), body
            assert answer.headers["content-type"] == "application/problem+json"
        assert (live.ledger_rows(), stored_keys(live)) == (before, keys)
        assert (available(c, "ann"), available(c, "bob")) == (0, 0)
        # the corrected request runs under the same key, once
        fixed = {"points": 5, "reason": "outage", "segment": "vip"}
        done = c.post(BULK, json=fixed, headers={"Idempotency-Key": "outage-1"})
        assert (done.status_code, done.json()["credited"], done.json()["refused"]) == (200, 1, 0)
        assert [r["member"] for r in done.json()["results"]] == ["ann"]
        assert (available(c, "ann"), available(c, "bob")) == (5, 0)
        assert stored_keys(live) == keys | {"outage-1"}


def test_a_segment_no_member_is_in_credits_nobody(live: Live) -> None:
    """Programs do not declare their segments: a valid name nobody has is a true 0."""
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann", "segments": ["vip"]})
        before = live.ledger_rows()
        none = c.post(BULK, json={"points": 5, "reason": "outage", "segment": "vlp"},
                      headers={"Idempotency-Key": "b"})  # fmt: skip
        assert (none.status_code, none.json()) == (
            200, {"credited": 0, "refused": 0, "results": []}
        )  # fmt: skip
        assert live.ledger_rows() == before


def test_bulk_adjustments_are_for_admin_keys_only(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann", "segments": ["vip"]})
    before, keys = live.ledger_rows(), stored_keys(live)
    with live.client("support") as s:
        small = s.post(BULK, json={"points": 5, "reason": "outage", "members": ["ann"]},
                       headers={"Idempotency-Key": "s1"})  # fmt: skip
    assert (small.status_code, small.json()["code"], small.json()["detail"]) == (
        403, "forbidden", "role 'support' may not call POST /v1/adjustments:bulk"
    )  # fmt: skip
    assert (live.ledger_rows(), stored_keys(live)) == (before, keys)


def test_a_redemption_sent_again_after_its_cancellation_says_cancelled(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "dan"})
        c.post("/v1/members/dan/adjustments", json={"points": 150, "reason": "welcome"},
               headers={"Idempotency-Key": "a1"})  # fmt: skip
        ask = {"member": "dan", "reward": "mug"}
        first = c.post("/v1/redemptions", json=ask, headers={"Idempotency-Key": "same-dan"})
        assert first.status_code == 201
        made = first.json()
        assert (made["status"], made["replayed"], made["points"]) == ("active", False, 100)
        again = c.post("/v1/redemptions", json=ask, headers={"Idempotency-Key": "same-dan"})
        assert (again.status_code, again.headers["idempotent-replayed"], again.json()) == (
            201, "true", {**made, "replayed": True}
        )  # fmt: skip
        cancel = c.post(f"/v1/redemptions/{made['id']}:cancel", headers={"Idempotency-Key": "c1"})
        back = {"points_spendable": 100, "points_expired": 0, "debt_repaid": 0,
                "written_off_restored": 0, "expired_lots": []}  # fmt: skip
        made = {**made, **back}
        assert (cancel.status_code, cancel.json()) == (
            200, {**made, "status": "cancelled", "replayed": False}
        )  # fmt: skip
        rows = live.ledger_rows()
        stale = c.post("/v1/redemptions", json=ask, headers={"Idempotency-Key": "same-dan"})
        assert (stale.status_code, stale.headers["idempotent-replayed"], stale.json()) == (
            201, "true", {**made, "status": "cancelled", "replayed": True}
        )  # fmt: skip
        cancel_again = c.post(f"/v1/redemptions/{made['id']}:cancel",
                              headers={"Idempotency-Key": "c1"})  # fmt: skip
        assert (cancel_again.status_code, cancel_again.json()) == (
            200, {**made, "status": "cancelled", "replayed": True}
        )  # fmt: skip
        other_key = c.post(f"/v1/redemptions/{made['id']}:cancel",
                           headers={"Idempotency-Key": "c2"})  # fmt: skip
        assert (other_key.status_code, other_key.json()) == (
            200, {**made, "status": "cancelled", "replayed": True}
        )  # fmt: skip
        assert live.ledger_rows() == rows
        assert available(c, "dan") == 150


def test_the_catalogue_gives_each_rewards_currency(live: Live) -> None:
    with live.client("analyst") as c:
        rewards = c.get("/v1/rewards").json()["rewards"]
    assert [(r["id"], r["currency"]) for r in rewards] == [("ten", "points"), ("mug", "points")]


def test_the_catalogue_gives_the_stock_left(live: Live) -> None:
    """`stock` is the program's; `stock_left` goes down with each redemption not
    cancelled and back up with a cancellation (null: unlimited)."""
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "eve"})
        c.post("/v1/members/eve/adjustments", json={"points": 150, "reason": "welcome"},
               headers={"Idempotency-Key": "s1"})  # fmt: skip

        def stocks() -> list[tuple[str, int | None, int | None]]:
            rewards = c.get("/v1/rewards").json()["rewards"]
            return [(r["id"], r["stock"], r["stock_left"]) for r in rewards]

        assert stocks() == [("ten", None, None), ("mug", 1, 1)]
        made = c.post("/v1/redemptions", json={"member": "eve", "reward": "mug"},
                      headers={"Idempotency-Key": "s2"}).json()  # fmt: skip
        assert stocks() == [("ten", None, None), ("mug", 1, 0)]
        c.post(f"/v1/redemptions/{made['id']}:cancel", headers={"Idempotency-Key": "s3"})
        assert stocks() == [("ten", None, None), ("mug", 1, 1)]
