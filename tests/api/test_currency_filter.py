"""The ``currency`` query parameter of the balance and the ledger: only that currency;
one the program does not have is refused alike on both routes, naming the field."""

from __future__ import annotations

from tests.api.conftest import Live


def test_an_unknown_currency_is_refused_alike_on_balance_and_ledger(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        assert c.post("/v1/members/ann/adjustments", json={"points": 5, "reason": "seed"},
                      headers={"Idempotency-Key": "seed"}).status_code == 201  # fmt: skip
        for url in ("/v1/members/ann/balance", "/v1/members/ann/ledger"):
            out = c.get(url, params={"currency": "miles"})
            assert out.status_code == 422, out.text
            assert out.headers["content-type"] == "application/problem+json"
            assert out.json() == {
                "type": "https://fidelite.dev/problems/unknown_currency",
                "title": "unknown currency", "status": 422, "code": "unknown_currency",
                "detail": "program 'shop' has no currency 'miles'", "field": "currency",
            }  # fmt: skip
        balance = c.get("/v1/members/ann/balance", params={"currency": "points"}).json()
        assert [(b["currency"], b["available"]) for b in balance["balances"]] == [("points", 5)]
        ledger = c.get("/v1/members/ann/ledger", params={"currency": "points"}).json()
        assert [(e["currency"], e["available_change"]) for e in ledger["entries"]] == [
            ("points", 5)]  # fmt: skip
        document = c.get("/openapi.json").json()
    for template in ("/v1/members/{member_id}/balance", "/v1/members/{member_id}/ledger"):
        (param,) = [p for p in document["paths"][template]["get"]["parameters"]
                    if p["name"] == "currency"]  # fmt: skip
        assert param["in"] == "query" and param["description"]
    assert live.ledger_rows() == 1
