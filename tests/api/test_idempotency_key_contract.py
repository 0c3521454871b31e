"""The OpenAPI document declares ``Idempotency-Key`` as the routes check it: required
where a call without it is refused, 1 to 200 long everywhere."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from fidelite.api.tables import api_requests
from tests.api.conftest import Live

REQUIRED = {
    ("post", "/v1/redemptions"): ("/v1/redemptions", {"member": "ann", "reward": "ten"}),
    ("post", "/v1/members/{member_id}/adjustments"): (
        "/v1/members/ann/adjustments", {"points": 5, "reason": "goodwill"}),
    ("post", "/v1/adjustments:bulk"): (
        "/v1/adjustments:bulk", {"members": ["ann"], "points": 5, "reason": "promo"}),
    ("post", "/v1/members/{member_id}/tier:assign"): (
        "/v1/members/ann/tier:assign",
        {"tier": "silver", "until": "2099-01-01T00:00:00Z", "reason": "vip"}),
    ("post", "/v1/coupon-campaigns/{campaign_id}/coupons"): (
        "/v1/coupon-campaigns/welcome/coupons", {"count": 1}),
}  # fmt: skip


def key_parameters(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): p
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for p in operation.get("parameters", [])
        if p["name"] == "Idempotency-Key"
    }


def test_the_key_is_declared_required_where_it_is_with_its_length(live: Live) -> None:
    with live.client(None) as c:
        document = c.get("/openapi.json").json()
    declared = key_parameters(document)
    assert len(declared) == 15  # every POST, PATCH and DELETE of /v1
    assert {op for op, p in declared.items() if p["required"]} == set(REQUIRED)
    for p in declared.values():
        assert p["in"] == "header"
        assert p["schema"] == {"type": "string", "minLength": 1, "maxLength": 200,
                               "title": "Idempotency-Key"}  # fmt: skip
        assert "1 to 200 bytes" in p["description"]
        assert p["description"].startswith("Required" if p["required"] else "Makes")


def test_each_route_declaring_the_key_required_refuses_a_call_without_it(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        assert c.post("/v1/members/ann/adjustments", json={"points": 50, "reason": "seed"},
                      headers={"Idempotency-Key": "seed"}).status_code == 201  # fmt: skip
        before = (live.ledger_rows(), stored(live))
        for url, body in REQUIRED.values():
            refused = c.post(url, json=body)
            assert refused.status_code == 422, (url, refused.text)
            problem = refused.json()
            assert problem["code"] == "invalid_request"
            assert [e["location"] for e in problem["errors"]] == ["header.Idempotency-Key"]
            assert problem["detail"].startswith("header.Idempotency-Key: required")
        assert (live.ledger_rows(), stored(live)) == before


def stored(live: Live) -> int:
    with live.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(api_requests)).scalar_one())
