"""Every success body of the /v1 routes has a named schema in the OpenAPI document, and
the live bodies of the routes typed here are exactly what their models describe: they
validate, and they carry no key the model does not name (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import fidelite.program
from fidelite.api.app import create_app
from fidelite.api.keys import create_key
from fidelite.api.routes.adjustments import AdjustmentReceipt, BulkAdjustmentResult
from fidelite.api.routes.coupons import IssuedCoupons
from fidelite.api.routes.events import BatchResult, EventRecord
from fidelite.api.routes.members import MemberErasure, MemberExport, Timeline
from fidelite.api.routes.rewards import RedemptionOut, RewardCatalogue, RewardOut
from fidelite.api.routes.tiers import TierAssigned, TierStanding
from fidelite.api.routes.webhooks import (
    Delivery,
    DeliveryAttempts,
    DeliveryLog,
    NewSubscription,
    Subscription,
    SubscriptionList,
)
from fidelite.program import load_program, parse_program
from fidelite.program.reward import Reward
from fidelite.webhooks import DeliveryWorker
from fidelite.webhooks import subscriptions as subs
from tests.api import conftest
from tests.api.conftest import PROGRAM, Live, start_server
from tests.conftest import BACKENDS, make_database
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock

MODELS: dict[tuple[str, str, str], type[BaseModel]] = {
    ("get", "/v1/members/{member_id}/timeline", "200"): Timeline,
    ("get", "/v1/members/{member_id}/export", "200"): MemberExport,
    ("delete", "/v1/members/{member_id}", "200"): MemberErasure,
    ("get", "/v1/rewards", "200"): RewardCatalogue,
    ("post", "/v1/redemptions", "201"): RedemptionOut,
    ("post", "/v1/redemptions/{redemption_id}:cancel", "200"): RedemptionOut,
    ("post", "/v1/members/{member_id}/adjustments", "201"): AdjustmentReceipt,
    ("post", "/v1/adjustments:bulk", "200"): BulkAdjustmentResult,
    ("get", "/v1/webhooks", "200"): SubscriptionList,
    ("post", "/v1/webhooks", "201"): NewSubscription,
    ("delete", "/v1/webhooks/{subscription_id}", "200"): Subscription,
    ("get", "/v1/webhooks/deliveries", "200"): DeliveryLog,
    ("get", "/v1/webhooks/deliveries/{delivery_id}/attempts", "200"): DeliveryAttempts,
    ("post", "/v1/webhooks/deliveries/{delivery_id}:replay", "200"): Delivery,
    ("post", "/v1/events:batch", "200"): BatchResult,
    ("get", "/v1/events/{event_id}", "200"): EventRecord,
    ("get", "/v1/members/{member_id}/tier", "200"): TierStanding,
    ("post", "/v1/members/{member_id}/tier:assign", "201"): TierAssigned,
    ("post", "/v1/coupon-campaigns/{campaign_id}/coupons", "201"): IssuedCoupons,
}
CAFE = Path(fidelite.program.__file__).with_name("example.yaml")
PURCHASE = {"id": "e1", "type": "purchase", "member": "ann", "at": "2026-11-20T10:00:00+01:00"}
PUBLIC_HOOK = "https://93.184.216.34/hooks"  # a literal public address: nothing resolved


def openapi() -> dict[str, Any]:
    return create_app("sqlite://", parse_program(PROGRAM)).openapi()


def success_schemas(doc: dict[str, Any]) -> Iterator[tuple[tuple[str, str, str], Any]]:
    """Every 2xx JSON schema of every /v1 operation, keyed (method, path, status)."""
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if path.startswith("/v1/") and status.startswith("2"):
                    yield (method, path, status), response["content"]["application/json"]["schema"]


def key_paths(value: Any, at: str = "") -> set[str]:
    """Every key path of a JSON value (list items share the path ``[]``)."""
    if isinstance(value, dict):
        return {at}.union(*(key_paths(v, f"{at}.{k}") for k, v in value.items()))
    if isinstance(value, list):
        return {at}.union(*(key_paths(v, f"{at}[]") for v in value))
    return {at}


def conforms(response: httpx.Response, status: int, model: type[BaseModel]) -> Any:
    """The body, once checked: the status, the model's types, no key it does not name."""
    assert response.status_code == status, response.text
    body = response.json()
    parsed = model.model_validate(body)
    assert key_paths(parsed.model_dump(mode="json", by_alias=True)) == key_paths(body)
    return body


def test_every_v1_success_body_names_a_typed_schema() -> None:
    doc = openapi()
    components = doc["components"]["schemas"]
    untyped = set()
    for where, schema in success_schemas(doc):
        if "$ref" not in schema:
            untyped.add(where)
            continue
        named = components[schema["$ref"].rsplit("/", 1)[-1]]
        assert named["type"] == "object" and named["properties"], where
    assert untyped == set()


def test_each_retyped_route_documents_its_model_with_an_example() -> None:
    doc = openapi()
    found = {where: schema.get("$ref", "") for where, schema in success_schemas(doc)}
    for where, model in MODELS.items():
        assert found[where] == f"#/components/schemas/{model.__name__}", where
        component = doc["components"]["schemas"][model.__name__]
        assert component["description"] and component["examples"], model.__name__
        # the examples as written (the served document leaves out their null values)
        for example in model.model_json_schema(mode="serialization")["examples"]:
            model.model_validate(example)


def test_a_batch_answers_its_model_processed_duplicate_and_rejected(live: Live) -> None:
    refund = {**PURCHASE, "id": "r1", "type": "refund", "amount": "5", "refund_of": "nope"}
    events = [{**PURCHASE, "amount": "12"}, refund, {**PURCHASE, "amount": "12"}]
    with live.client("integration") as c:
        out = c.post("/v1/events:batch", json={"events": events}, headers={"Idempotency-Key": "b"})
        results = conforms(out, 200, BatchResult)["results"]
    assert [r["outcome"] for r in results] == ["processed", "rejected", "duplicate"]
    assert results[0]["points"] == {"points": 12}
    assert results[1]["problem"] == {
        "type": "https://fidelite.dev/problems/unknown_purchase", "title": "unknown purchase",
        "status": 404, "detail": "no purchase 'nope'", "code": "unknown_purchase",
    }  # fmt: skip


def test_an_event_record_answers_its_model(live: Live) -> None:
    refund = {**PURCHASE, "id": "r1", "type": "refund", "amount": "5", "refund_of": "e1"}
    with live.client("integration") as c:
        c.post("/v1/events", json={**PURCHASE, "amount": "1200", "coupon": "welc-nope"})
        c.post("/v1/events", json=refund)
        bought = conforms(c.get("/v1/events/e1"), 200, EventRecord)
        refunded = conforms(c.get("/v1/events/r1"), 200, EventRecord)
    assert (bought["tier_changes"][0]["kind"], bought["refunds"][0]["event_id"]) == (
        "upgrade",
        "r1",
    )
    assert (bought["coupon"], refunded["trace"][0]["points"]) == ("WELC-NOPE", 5)


def test_reward_model_names_every_field_of_the_program_reward() -> None:
    # and, last, what the program does not define: the stock left to give
    assert list(RewardOut.model_fields) == [*Reward.model_fields, "stock_left"]


def test_member_routes_answer_their_models(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann", "attributes": {"email": "ann@example.com"}})
        c.post("/v1/events", json={**PURCHASE, "amount": "120"})
        key = {"Idempotency-Key": "a1"}
        body = {"points": 30, "reason": "welcome", "expires_at": "2030-01-01T00:00:00Z"}
        adjusted = c.post("/v1/members/ann/adjustments", json=body, headers=key)
        receipt = conforms(adjusted, 201, AdjustmentReceipt)
        assert receipt == {"member": "ann", "transaction_id": receipt["transaction_id"],
                           "points": 30, "currency": "points", "replayed": False}  # fmt: skip
        again = c.post("/v1/members/ann/adjustments", json=body, headers=key)
        # the stored answer, saying it is a replay as the Idempotent-Replayed header does
        assert again.json() == adjusted.json() | {"replayed": True}
        timeline = conforms(c.get("/v1/members/ann/timeline"), 200, Timeline)
        assert [i["kind"] for i in timeline["timeline"]] == ["points.adjust", "points.earn"]
        earned = timeline["timeline"][1]["transaction_id"]
        assert timeline["timeline"][1] == {"at": "2026-11-20T09:00:00Z", "kind": "points.earn",
                                           "currency": "points", "points": 120,
                                           "reason": "purchase", "source": "e1",
                                           "transaction_id": earned, "transaction_points": 120,
                                           "available_change": 120, "pending_change": 0,
                                           "debt_change": 0}  # fmt: skip
        exported = conforms(c.get("/v1/members/ann/export"), 200, MemberExport)
        assert exported["profile"]["attributes"] == {"email": "ann@example.com"}
        assert [e["kind"] for e in exported["ledger"]] == ["earn", "adjust"]
        assert exported["lots"][1]["expires_at"] == "2030-01-01T00:00:00+00:00"
        erased = conforms(
            c.delete("/v1/members/ann", headers={"Idempotency-Key": "d1"}), 200, MemberErasure
        )
        assert erased["replayed"] is False
        repeated = c.delete("/v1/members/ann", headers={"Idempotency-Key": "d2"})
        assert conforms(repeated, 200, MemberErasure)["replayed"] is True
        tombstone = erased["tombstone"]
        gone = conforms(c.get(f"/v1/members/{tombstone}/export"), 200, MemberExport)
        assert gone["erasure"]["tombstone"] == tombstone


def test_reward_and_adjustment_routes_answer_their_models(live: Live) -> None:
    with live.client("admin") as c:
        for ref in ("ann", "bob"):
            c.post("/v1/members", json={"id": ref, "segments": ["vip"]})
        listed = {"points": 60, "reason": "sorry", "members": ["ann", "ghost"]}
        bulk = c.post("/v1/adjustments:bulk", json=listed, headers={"Idempotency-Key": "b1"})
        results = conforms(bulk, 200, BulkAdjustmentResult)["results"]
        assert results[1]["problem"] == {
            "type": "https://fidelite.dev/problems/unknown_member",
            "title": "unknown member",
            "status": 404,
            "detail": "no member 'ghost' in program 'shop'",
            "code": "unknown_member",
            "field": "member_ref",
        }
        segment = c.post(
            "/v1/adjustments:bulk",
            headers={"Idempotency-Key": "b2"},
            json={"points": 5, "reason": "vip", "segment": "vip"},
        )
        assert conforms(segment, 200, BulkAdjustmentResult)["credited"] == 2
        conforms(c.get("/v1/rewards"), 200, RewardCatalogue)
        made = c.post(
            "/v1/redemptions",
            json={"member": "ann", "reward": "ten"},
            headers={"Idempotency-Key": "r1"},
        )
        redemption = conforms(made, 201, RedemptionOut)
        assert list(redemption) == ["id", "member", "reward", "points", "currency",
                                    "transaction_id", "code", "status", "replayed",
                                    "points_spendable", "points_expired", "debt_repaid",
                                    "written_off_restored", "expired_lots"]  # fmt: skip
        cancelled = c.post(
            f"/v1/redemptions/{redemption['id']}:cancel", headers={"Idempotency-Key": "c1"}
        )
        assert conforms(cancelled, 200, RedemptionOut)["status"] == "cancelled"


def test_webhook_routes_answer_their_models(live: Live) -> None:
    receiver = Receiver()
    try:
        with live.client("admin") as c:
            made = c.post(
                "/v1/webhooks",
                json={"url": PUBLIC_HOOK, "event_types": ["*"], "description": "CRM"},
            )
            created = conforms(made, 201, NewSubscription)
            assert created["secret"].startswith("whsec_")
            listed = conforms(c.get("/v1/webhooks"), 200, SubscriptionList)["subscriptions"]
            assert [s["url"] for s in listed] == [PUBLIC_HOOK] and "secret" not in listed[0]
            removed = c.delete(f"/v1/webhooks/{created['id']}")  # before any delivery to it
            assert conforms(removed, 200, Subscription)["active"] is False
            subs.add(live.db, "shop", receiver.url, ["points.earned"], allow_private=True)
            c.post("/v1/events", json={**PURCHASE, "amount": "12"})
            receiver.script.append(503)
            worker = DeliveryWorker(live.db, allow_private=True, clock=Clock())
            assert worker.run_once().failed == 1
            worker.close()
            log = conforms(c.get("/v1/webhooks/deliveries"), 200, DeliveryLog)["deliveries"]
            attempts = c.get(f"/v1/webhooks/deliveries/{log[0]['id']}/attempts")
            assert conforms(attempts, 200, DeliveryAttempts)["attempts"][0]["status"] == 503
            replayed = c.post(f"/v1/webhooks/deliveries/{log[0]['id']}:replay")
            assert conforms(replayed, 200, Delivery)["state"] == "pending"
    finally:
        receiver.close()


@pytest.fixture(params=BACKENDS)
def cafe(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[httpx.Client]:
    """An admin client of a live server of the example program (tiers, every reward kind)."""
    db = make_database(request.param, request, tmp_path)
    monkeypatch.setattr(conftest, "PROGRAM", CAFE.read_text(encoding="utf-8"))  # start_server's
    server, url = start_server(db)
    token = create_key(db, "cafe_club", "admin")[1]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    server.stop()
    db.dispose()


def test_tier_changes_and_the_full_catalogue_answer_their_models(cafe: httpx.Client) -> None:
    catalogue = conforms(cafe.get("/v1/rewards"), 200, RewardCatalogue)
    # the body is the program's own rewards, as the route answered before it was typed,
    # each in its currency resolved (the default one when the program names none)
    program = load_program(CAFE)
    assert catalogue == {"rewards": [
        r.model_dump(mode="json")
        | {"currency": program.currency_of(r.currency), "stock_left": r.stock}  # none redeemed
        for r in program.rewards
    ]}  # fmt: skip
    cafe.post("/v1/members", json={"id": "ann"})
    bought = cafe.post("/v1/events", json={**PURCHASE, "amount": "350"})
    assert bought.status_code == 201, bought.text
    timeline = conforms(cafe.get("/v1/members/ann/timeline"), 200, Timeline)
    tiers = [i for i in timeline["timeline"] if i["kind"].startswith("tier.")]
    assert [(t["kind"], t["from"], t["to"]) for t in tiers] == [
        ("tier.upgrade", "bronze", "silver")
    ]
    assert list(tiers[0]) == ["at", "kind", "from", "to", "value", "reason", "event_id", "until"]
