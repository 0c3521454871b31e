"""The authorisation matrix, over real HTTP: for every /v1 route, no key (401), a key of
another program (403), a role not allowed (403) and an allowed role (2xx). Denials leak
no member data and change nothing. A new route without an entry here fails the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert

from fidelite.api.access import ACCESS, ALL
from fidelite.webhooks import dispatch, log, record
from fidelite.webhooks.tables import subscriptions
from tests.api.conftest import Live

SECRET = "ann-private-attribute"

# One concrete request per route; destructive ones last (they run in this order).
CASES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/v1/members"): {"url": "/v1/members"},
    ("GET", "/v1/members/{member_id}"): {"url": "/v1/members/ann"},
    ("GET", "/v1/members/{member_id}/balance"): {"url": "/v1/members/ann/balance"},
    ("GET", "/v1/members/{member_id}/ledger"): {"url": "/v1/members/ann/ledger"},
    ("GET", "/v1/members/{member_id}/timeline"): {"url": "/v1/members/ann/timeline"},
    ("GET", "/v1/members/{member_id}/export"): {"url": "/v1/members/ann/export"},
    ("GET", "/v1/members/{member_id}/tier"): {"url": "/v1/members/ann/tier"},
    ("GET", "/v1/events/{event_id}"): {"url": "/v1/events/seed-e"},
    ("GET", "/v1/rewards"): {"url": "/v1/rewards"},
    ("GET", "/v1/coupons/{code}"): {"url": "/v1/coupons/{coupon}"},
    ("GET", "/v1/redemptions"): {"url": "/v1/redemptions?code={code}"},
    ("GET", "/v1/redemptions/{redemption_id}"): {"url": "/v1/redemptions/{rid}"},
    ("GET", "/v1/members/{member_id}/redemptions"): {"url": "/v1/members/ann/redemptions"},
    ("GET", "/v1/webhooks"): {"url": "/v1/webhooks"},
    ("GET", "/v1/webhooks/deliveries"): {"url": "/v1/webhooks/deliveries"},
    ("GET", "/v1/webhooks/deliveries/{delivery_id}/attempts"): {
        "url": "/v1/webhooks/deliveries/{did}/attempts"
    },
    ("POST", "/v1/members"): {"url": "/v1/members", "json": {"id": "new"}},
    ("PATCH", "/v1/members/{member_id}"): {
        "url": "/v1/members/ann",
        "json": {"attributes": {"note": SECRET}},
    },
    ("POST", "/v1/events"): {
        "url": "/v1/events",
        "json": {
            "id": "E",
            "type": "purchase",
            "member": "ann",
            "amount": "5",
            "at": "2026-11-20T10:00:00+01:00",
        },
    },
    ("POST", "/v1/events:batch"): {
        "url": "/v1/events:batch",
        "json": {
            "events": [
                {
                    "id": "B",
                    "type": "purchase",
                    "member": "ann",
                    "amount": "5",
                    "at": "2026-11-20T10:00:00+01:00",
                }
            ]
        },
    },
    ("POST", "/v1/members/{member_id}/adjustments"): {
        "url": "/v1/members/ann/adjustments",
        "json": {"points": 10, "reason": "goodwill"},
    },
    ("POST", "/v1/adjustments:bulk"): {
        "url": "/v1/adjustments:bulk",
        "json": {"points": 10, "reason": "outage", "members": ["ann"]},
    },
    ("POST", "/v1/redemptions"): {
        "url": "/v1/redemptions",
        "json": {"member": "ann", "reward": "ten"},
    },
    ("POST", "/v1/redemptions/{redemption_id}:cancel"): {"url": "/v1/redemptions/{rid}:cancel"},
    ("POST", "/v1/redemptions/{redemption_id}:use"): {
        "url": "/v1/redemptions/{urid}:use",
        "json": {"store": "paris-04"},
    },
    ("POST", "/v1/members/{member_id}/tier:assign"): {
        "url": "/v1/members/ann/tier:assign",
        "json": {"tier": "silver", "until": "2099-01-01T00:00:00Z", "reason": "goodwill"},
    },
    ("POST", "/v1/coupon-campaigns/{campaign_id}/coupons"): {
        "url": "/v1/coupon-campaigns/welcome/coupons",
        "json": {"count": 2, "member": "ann"},
    },
    ("POST", "/v1/webhooks"): {
        "url": "/v1/webhooks",
        "json": {"url": "https://93.184.216.34/hooks", "event_types": ["points.earned"]},
    },
    ("POST", "/v1/webhooks/deliveries/{delivery_id}:replay"): {
        "url": "/v1/webhooks/deliveries/{did}:replay"
    },
    ("DELETE", "/v1/webhooks/{subscription_id}"): {"url": "/v1/webhooks/{sid}"},
    ("DELETE", "/v1/members/{member_id}"): {"url": "/v1/members/ann"},
}


def test_every_v1_route_has_an_access_rule_and_a_matrix_case(live: Live) -> None:
    with live.client(None) as c:
        spec = c.get("/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        if path.startswith("/v1")
        for method in ops
    }
    assert routes == set(ACCESS), "every /v1 route needs an entry in fidelite.api.access.ACCESS"
    assert routes == set(CASES), "every /v1 route needs a case in this matrix"


def _send(
    client: httpx.Client, case: dict[str, Any], ids: dict[str, str], n: int
) -> httpx.Response:
    method = next(m for (m, p), c in CASES.items() if c is case)
    url = case["url"].format(**ids)
    headers = {"Idempotency-Key": f"matrix-{n}"}
    return client.request(method, url, json=case.get("json"), headers=headers)


def _prepare(live: Live) -> dict[str, str]:
    """ann with 500 points and a purchase to look up, a redemption to read and cancel and
    one to use, a webhook subscription to remove and a delivery to replay."""
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann", "attributes": {"secret": SECRET}})
        c.post(
            "/v1/members/ann/adjustments",
            json={"points": 500, "reason": "seed"},
            headers={"Idempotency-Key": "seed"},
        )
        redeemed = c.post(
            "/v1/redemptions",
            json={"member": "ann", "reward": "ten"},
            headers={"Idempotency-Key": "seed-r"},
        ).json()
        rid, code = redeemed["id"], redeemed["code"]
        urid = c.post(  # one to use (the other is cancelled)
            "/v1/redemptions",
            json={"member": "ann", "reward": "ten"},
            headers={"Idempotency-Key": "seed-u"},
        ).json()["id"]
        (coupon,) = c.post(  # a code to look up
            "/v1/coupon-campaigns/welcome/coupons",
            json={"count": 1},
            headers={"Idempotency-Key": "seed-c"},
        ).json()["codes"]
    with live.db.write() as conn:  # a subscription to a public name (no DNS lookup here)
        sid = conn.execute(
            insert(subscriptions).returning(subscriptions.c.id),
            {
                "program_id": "shop",
                "url": "https://hooks.example.com/x",
                "secret": "s" * 32,
                "event_types": ["points.earned"],
                "active": True,
                "description": None,
                "created_at": datetime.now(UTC),
            },
        ).scalar_one()
        record(conn, "shop", "points.earned", {"member": "ann"}, member_ref="ann")
    dispatch(live.db)  # a delivery to list, inspect and replay
    (delivery,) = log(live.db, "shop")
    event = {"id": "seed-e", "type": "purchase", "member": "ann", "amount": "5",
             "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip
    with live.client("admin") as c:
        assert c.post("/v1/events", json=event).status_code == 201
    return {"rid": str(rid), "urid": str(urid), "code": code, "sid": str(sid),
            "did": str(delivery["id"]), "coupon": coupon}  # fmt: skip


def test_authorisation_matrix(live: Live) -> None:
    ids = _prepare(live)
    n = 0
    for route, case in CASES.items():
        allowed = ACCESS[route]
        denied = sorted(ALL - allowed)
        callers: list[tuple[str | None, int]] = [(None, 401), ("other_program", 403)]
        callers += [(role, 403) for role in denied]
        for role, status in callers:
            n += 1
            before = live.ledger_rows()
            with live.client(role) as c:
                response = _send(c, case, ids, n)
            assert response.status_code == status, (route, role, response.text)
            assert response.headers["content-type"] == "application/problem+json", route
            assert SECRET not in response.text and "ann" not in response.json().get("detail", "")
            assert live.ledger_rows() == before, (route, role)
        role = "integration" if "integration" in allowed else sorted(allowed)[0]
        n += 1
        with live.client(role) as c:
            response = _send(c, case, ids, n)
        assert 200 <= response.status_code < 300, (route, role, response.text)
    with live.client("admin") as c:  # the denied PATCH calls changed nothing either
        assert c.get("/v1/members/ann").status_code == 404  # erased by the last case


def test_unknown_route_and_method_are_problems(live: Live) -> None:
    with live.client("admin") as c:
        missing = c.get("/v1/nothing-here")
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        wrong = c.put("/v1/members/ann", json={})
        assert (wrong.status_code, wrong.headers["content-type"]) == (
            405,
            "application/problem+json",
        )


def test_revoked_key_is_refused_at_once(live: Live) -> None:
    from fidelite.api.keys import revoke_key

    with live.client("analyst") as c:
        assert c.get("/v1/rewards").status_code == 200
        revoke_key(live.db, live.tokens["analyst"].split("_")[1])
        refused = c.get("/v1/rewards")
        assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
