"""Every route over real HTTP, on a SQLite file and on PostgreSQL, with exact values."""

from __future__ import annotations

import json

from sqlalchemy import text

from fidelite.api.routes.events import EventResult
from fidelite.api.routes.members import Balances, LedgerPage
from fidelite.ledger import assert_invariants
from tests.api.conftest import Live

PURCHASE = {"type": "purchase", "member": "ann", "at": "2026-11-20T10:00:00+01:00"}
JSON = "application/json"
PROBLEM = "application/problem+json"


def test_members_create_read_update_list(live: Live) -> None:
    with live.client("integration") as c:
        made = c.post(
            "/v1/members", json={"id": "ann", "segments": ["vip"], "attributes": {"city": "Lyon"}}
        )
        assert made.status_code == 201
        body = made.json()
        assert (body["id"], body["segments"], body["attributes"], body["purchases"]) == (
            "ann",
            ["vip"],
            {"city": "Lyon"},
            0,
        )
        again = c.post("/v1/members", json={"id": "ann"})
        assert (again.status_code, again.json()["segments"]) == (200, ["vip"])
        patched = c.patch("/v1/members/ann", json={"attributes": {"city": "Paris"}})
        assert patched.json()["attributes"] == {"city": "Paris"}
        refused = c.patch("/v1/members/ann", json={"tier": "gold"})
        assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
        assert c.get("/v1/members/ann").json()["attributes"] == {"city": "Paris"}
        for ref in ("bob", "cy", "dee"):
            c.post("/v1/members", json={"id": ref})
        first = c.get("/v1/members", params={"limit": 3}).json()
        assert [m["id"] for m in first["members"]] == ["ann", "bob", "cy"]
        rest = c.get("/v1/members", params={"limit": 3, "cursor": first["next_cursor"]}).json()
        assert ([m["id"] for m in rest["members"]], rest["next_cursor"]) == (["dee"], None)
        missing = c.get("/v1/members/zed")
        assert (missing.status_code, missing.json()["code"]) == (404, "unknown_member")
        # Segment names are what rules can write: lower-case identifiers.
        upper = c.post("/v1/members", json={"id": "eve", "segments": ["VIP"]})
        assert upper.status_code == 422 and upper.headers["content-type"] == PROBLEM
        assert "segments" in json.dumps(upper.json())
        assert c.get("/v1/members/eve").status_code == 404
        dashed = c.patch("/v1/members/ann", json={"segments": ["high-value"]})
        assert dashed.status_code == 422 and dashed.headers["content-type"] == PROBLEM
        assert c.get("/v1/members/ann").json()["segments"] == ["vip"]


def test_event_earns_and_is_deduplicated_by_event_id(live: Live) -> None:
    with live.client("integration") as c:
        first = c.post("/v1/events", json={**PURCHASE, "id": "e1", "amount": "42.90"})
        assert first.status_code == 201
        body = first.json()
        assert (body["outcome"], body["points"], body["trace_id"]) == (
            "processed",
            {"points": 42},
            "event:e1",
        )
        assert body["decision"]["trace"][0] == {
            "rule": "base",
            "outcome": "matched",
            "points": 42,
            "currency": "points",
        }
        rows = live.ledger_rows()
        again = c.post("/v1/events", json={**PURCHASE, "id": "e1", "amount": "42.90"})
        assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
        assert live.ledger_rows() == rows
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
        assert (balance["available"], balance["pending"], balance["debt"]) == (42, 0, 0)
        ledger = c.get("/v1/members/ann/ledger").json()
        # the bodies are those the OpenAPI document promises
        EventResult.model_validate(body)
        Balances.model_validate(c.get("/v1/members/ann/balance").json())
        assert LedgerPage.model_validate(ledger).entries[0].available_change == 42
        assert [(e["kind"], e["available_change"], e["source"]) for e in ledger["entries"]] == [
            ("earn", 42, "e1")
        ]
        timeline = c.get("/v1/members/ann/timeline").json()
        assert [i["kind"] for i in timeline["timeline"]] == ["points.earn"]
        bad = c.post("/v1/events", json={**PURCHASE, "id": "e2"})  # a purchase needs an amount
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
        refund = c.post(
            "/v1/events",
            json={
                "id": "r1",
                "type": "refund",
                "member": "ann",
                "at": "2026-11-21T10:00:00+01:00",
                "amount": "42.90",
                "refund_of": "e1",
            },
        )
        assert (refund.status_code, refund.json()["points"]) == (201, {"points": -42})
    assert_invariants(live.db, "shop")


def test_a_refund_dated_before_its_purchase_is_refused_alone_and_in_a_batch(live: Live) -> None:
    early = {"type": "refund", "member": "ann", "at": "2026-11-19T10:00:00+01:00",
             "amount": "10", "refund_of": "e1"}  # fmt: skip
    with live.client("integration") as c:
        assert (
            c.post("/v1/events", json={**PURCHASE, "id": "e1", "amount": "10"}).status_code == 201
        )
        rows = live.ledger_rows()
        refused = c.post("/v1/events", json={**early, "id": "r1"})
        assert (refused.status_code, refused.headers["content-type"]) == (422, PROBLEM)
        assert refused.json() == {
            "type": "https://fidelite.dev/problems/refund_before_purchase",
            "title": "refund before purchase",
            "status": 422,
            "detail": "the refund at 2026-11-19T10:00:00+01:00 is dated before its purchase, "
            "at 2026-11-20T10:00:00+01:00",
            "code": "refund_before_purchase",
        }
        out = c.post("/v1/events:batch", json={"events": [{**early, "id": "r2"}]},
                     headers={"Idempotency-Key": "early"})  # fmt: skip
        (result,) = out.json()["results"]
        assert (out.status_code, result["outcome"], result["problem"]["code"]) == (
            200, "rejected", "refund_before_purchase",
        )  # fmt: skip
        assert live.ledger_rows() == rows
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
        assert (balance["available"], balance["debt"]) == (10, 0)


def test_batch_applies_each_event_on_its_own(live: Live) -> None:
    events = [{**PURCHASE, "id": f"b{i}", "amount": "10"} for i in range(3)]
    events.insert(
        1,
        {
            "id": "x",
            "type": "refund",
            "member": "ann",
            "at": "2026-11-21T10:00:00+01:00",
            "amount": "5",
            "refund_of": "nope",
        },
    )
    with live.client("integration") as c:
        out = c.post("/v1/events:batch", json={"events": events}, headers={"Idempotency-Key": "b"})
        assert out.status_code == 200
        results = out.json()["results"]
        assert [r["outcome"] for r in results] == [
            "processed",
            "rejected",
            "processed",
            "processed",
        ]
        assert results[1]["problem"]["code"] == "unknown_purchase"
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 30
        too_many = c.post("/v1/events:batch", json={"events": [events[0]] * 1001})
        assert too_many.status_code == 422


def _history(member: str, prefix: str) -> list[dict[str, object]]:
    """Purchases, a repeated id, a refund of the first purchase and a refused refund."""
    at = "2026-11-20T10:00:00+01:00"
    buy = {"type": "purchase", "member": member, "at": at}
    return [
        {**buy, "id": f"{prefix}1", "amount": "42.90"},
        {**buy, "id": f"{prefix}2", "amount": "60"},
        {**buy, "id": f"{prefix}1", "amount": "42.90"},
        {"type": "refund", "member": member, "at": at, "id": f"{prefix}3", "amount": "20",
         "refund_of": f"{prefix}1"},
        {"type": "refund", "member": member, "at": at, "id": f"{prefix}4", "amount": "5",
         "refund_of": "nope"},
        {**buy, "id": f"{prefix}5", "amount": "7.5"},
    ]  # fmt: skip


def _comparable(body: dict[str, object], member: str) -> dict[str, object]:
    """An answer without what differs between two members: names, ids, transaction numbers."""
    text = json.dumps({k: v for k, v in body.items() if k != "transactions"}, sort_keys=True)
    return dict(json.loads(text.replace(member, "#")))


def test_batch_answers_what_events_one_by_one_answer(live: Live) -> None:
    with live.client("integration") as c:
        single = []
        for event in _history("sam", "sam-"):
            out = c.post("/v1/events", json=event)
            body = out.json()
            if out.status_code >= 400:  # a refused event: its entry in a batch answer
                body = {"event_id": event["id"], "outcome": "rejected", "problem": body}
            single.append(_comparable(body, "sam"))
        rows = live.ledger_rows()
        out = c.post("/v1/events:batch", json={"events": _history("bob", "bob-")})
        batched = [_comparable(r, "bob") for r in out.json()["results"]]
        assert out.status_code == 200
        assert [r["outcome"] for r in batched] == [
            "processed", "processed", "duplicate", "processed", "rejected", "processed",
        ]  # fmt: skip
        assert batched == single
        assert live.ledger_rows() == 2 * rows
        earned = sum(r["points"].get("points", 0) for r in batched if r["outcome"] == "processed")
        for member in ("sam", "bob"):
            balance = c.get(f"/v1/members/{member}/balance").json()["balances"][0]
            assert (balance["available"], balance["debt"]) == (earned, 0)
    assert_invariants(live.db, "shop")


def test_rewards_redeem_and_cancel(live: Live) -> None:
    with live.client("admin") as c:
        catalogue = c.get("/v1/rewards").json()["rewards"]
        assert [(r["id"], r["cost"], r["stock"]) for r in catalogue] == [
            ("ten", 10, None),
            ("mug", 100, 1),
        ]
        c.post("/v1/members", json={"id": "ann"})
        c.post(
            "/v1/members/ann/adjustments",
            json={"points": 150, "reason": "welcome"},
            headers={"Idempotency-Key": "a1"},
        )
        no_key = c.post("/v1/redemptions", json={"member": "ann", "reward": "mug"})
        assert no_key.status_code == 422
        made = c.post(
            "/v1/redemptions",
            json={"member": "ann", "reward": "mug"},
            headers={"Idempotency-Key": "r1"},
        )
        assert made.status_code == 201
        red = made.json()
        assert (red["points"], red["status"], red["code"].startswith("RW-")) == (
            100,
            "active",
            True,
        )
        sold_out = c.post(
            "/v1/redemptions",
            json={"member": "ann", "reward": "mug"},
            headers={"Idempotency-Key": "r2"},
        )
        assert (sold_out.status_code, sold_out.json()["code"]) == (422, "reward_out_of_stock")
        poor = c.post(
            "/v1/redemptions",
            json={"member": "ann", "reward": "ten"},
            headers={"Idempotency-Key": "r3"},
        )
        assert poor.status_code == 201  # 50 left, costs 10
        cancelled = c.post(f"/v1/redemptions/{red['id']}:cancel", headers={"Idempotency-Key": "c1"})
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 140
    assert_invariants(live.db, "shop")


def test_adjustments_single_bulk_and_support_limit(live: Live) -> None:
    with live.client("admin") as c:
        for ref, seg in (("ann", ["vip"]), ("bob", []), ("cy", ["vip"])):
            c.post("/v1/members", json={"id": ref, "segments": seg})
        bulk = c.post(
            "/v1/adjustments:bulk",
            json={"points": 25, "reason": "outage", "segment": "vip"},
            headers={"Idempotency-Key": "bulk1"},
        )
        assert (bulk.json()["credited"], bulk.json()["refused"]) == (2, 0)
        listed = c.post(
            "/v1/adjustments:bulk",
            json={"points": 5, "reason": "x", "members": ["bob", "ghost"]},
            headers={"Idempotency-Key": "bulk2"},
        )
        assert listed.json()["results"][1]["problem"]["code"] == "unknown_member"
        both = c.post(
            "/v1/adjustments:bulk",
            json={"points": 5, "reason": "x", "members": ["bob"], "segment": "vip"},
            headers={"Idempotency-Key": "bulk3"},
        )
        assert both.status_code == 422
    with live.client("support") as s:
        rows = live.ledger_rows()
        over = s.post(
            "/v1/members/ann/adjustments",
            json={"points": 5001, "reason": "too much"},
            headers={"Idempotency-Key": "s1"},
        )
        assert (over.status_code, over.json()["code"]) == (403, "adjustment_over_limit")
        assert live.ledger_rows() == rows
        ok = s.post(
            "/v1/members/ann/adjustments",
            json={"points": -10, "reason": "correction"},
            headers={"Idempotency-Key": "s2"},
        )
        assert ok.status_code == 201 and ok.json()["points"] == -10
        assert s.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 15
        entry = s.get("/v1/members/ann/ledger").json()["entries"][0]
        assert (entry["reason"], entry["actor"].startswith("api-key:")) == ("correction", True)
    assert_invariants(live.db, "shop")


def test_export_and_erase(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann", "attributes": {"email": "ann@example.com"}})
        c.post("/v1/events", json={**PURCHASE, "id": "e1", "amount": "20"})
        exported = c.get("/v1/members/ann/export").json()
        assert "ann@example.com" in str(exported)
        erased = c.delete("/v1/members/ann", headers={"Idempotency-Key": "del1"})
        assert erased.status_code == 200
        tombstone = erased.json()["tombstone"]
        assert c.get("/v1/members/ann").status_code == 404
        profile = c.get(f"/v1/members/{tombstone}").json()
        assert profile["attributes"] == {}
        assert c.get(f"/v1/members/{tombstone}/balance").json()["balances"][0]["available"] == 20
    assert_invariants(live.db, "shop")


def test_webhook_subscriptions(live: Live) -> None:
    with live.client("admin") as c:
        unsafe = c.post(
            "/v1/webhooks",
            json={"url": "http://169.254.169.254/x", "event_types": ["points.earned"]},
        )
        assert unsafe.status_code == 422 and unsafe.json()["code"] == "unsafe_url"
        assert c.get("/v1/webhooks").json()["subscriptions"] == []


def test_health_and_readiness(live: Live) -> None:
    with live.client(None) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and ready["revision"] == ready["head"]
        assert c.get("/openapi.json").json()["info"]["title"] == "fidelite API"


def test_readiness_names_a_database_a_newer_fidelite_upgraded(live: Live) -> None:
    """Not "not_migrated", which points at `db upgrade` (it refuses such a database)."""
    with live.client(None) as c:
        head = c.get("/readyz").json()["head"]
        newer = f"{int(head) + 1:04d}"
        with live.db.write() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
        try:
            answer = c.get("/readyz")
        finally:  # the PostgreSQL database is the test run's, shared by the next tests
            with live.db.write() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        assert answer.status_code == 503
        assert answer.json() == {"status": "newer_schema", "revision": newer, "head": head}


def test_openapi_documents_the_till_responses() -> None:
    from fidelite.api.app import create_app
    from fidelite.program import parse_program

    program = parse_program(
        "id: p\nname: P\ncurrencies: [{id: points, name: Points, value: 0.01}]\n"
        "rules: [{id: base, on: [purchase], per_amount: {points: 1}}]\n"
    )
    paths = create_app("sqlite://", program).openapi()["paths"]

    def ref(path: str, method: str, status: str) -> str:
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        return str(content["schema"]["$ref"]).rsplit("/", 1)[-1]

    assert ref("/v1/events", "post", "201") == "EventResult"
    assert ref("/v1/events", "post", "200") == "EventResult"
    assert ref("/v1/members/{member_id}/balance", "get", "200") == "Balances"
    assert ref("/v1/members/{member_id}/ledger", "get", "200") == "LedgerPage"
