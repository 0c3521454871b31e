"""A request sent again with its Idempotency-Key gets the first answer, and a body with
a ``replayed`` field says true, as the header ``Idempotent-Replayed`` does (and as the
CLI says for a command run again with its --key): it used to send the stored first
answer as it was, ``"replayed": false``, while nothing was done."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Live


def twice(c: Any, method: str, path: str, key: str, body: Any = None) -> tuple[Any, Any]:
    kwargs = {"headers": {"Idempotency-Key": key}} | ({} if body is None else {"json": body})
    return c.request(method, path, **kwargs), c.request(method, path, **kwargs)


def test_an_adjustment_sent_again_says_replayed_in_its_body(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann"})
        first, again = twice(c, "POST", "/v1/members/ann/adjustments", "adj-1",
                             {"points": 50, "reason": "goodwill"})  # fmt: skip
        rows = live.ledger_rows()
        third = c.post("/v1/members/ann/adjustments", json={"points": 50, "reason": "goodwill"},
                       headers={"Idempotency-Key": "adj-1"})  # fmt: skip
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]["available"]
    assert (first.status_code, again.status_code, third.status_code) == (201, 201, 201)
    assert first.headers.get("Idempotent-Replayed") is None
    assert (again.headers["Idempotent-Replayed"], third.headers["Idempotent-Replayed"]) == (
        "true", "true",
    )  # fmt: skip
    answer = {"member": "ann", "transaction_id": first.json()["transaction_id"],
              "points": 50, "currency": "points"}  # fmt: skip
    assert first.json() == answer | {"replayed": False}
    assert again.json() == third.json() == answer | {"replayed": True}
    assert (live.ledger_rows(), balance) == (rows, 50)  # nothing done again


def test_a_bulk_adjustment_sent_again_says_replayed_for_each_credit(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann"})
        body = {"points": 20, "reason": "outage", "members": ["ann", "ghost"]}
        first, again = twice(c, "POST", "/v1/adjustments:bulk", "bulk-1", body)
        rows = live.ledger_rows()
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    credit, refusal = first.json()["results"]
    assert credit["replayed"] is False
    assert again.json() == {"credited": 1, "refused": 1,
                            "results": [credit | {"replayed": True}, refusal]}  # fmt: skip
    assert live.ledger_rows() == rows


def test_an_erasure_sent_again_says_replayed(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann"})
        first, again = twice(c, "DELETE", "/v1/members/ann", "erase-1")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["replayed"] is False
    assert again.json() == first.json() | {"replayed": True}


def test_a_stored_refusal_is_sent_again_as_it_was(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann"})
        first, again = twice(c, "POST", "/v1/members/ann/adjustments", "adj-2",
                             {"points": -50, "reason": "correction"})  # fmt: skip
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert "replayed" not in first.json()
