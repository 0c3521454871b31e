"""Refusals name what is wrong: every route words an unknown member the same way (the
reference and the program), a refund of another member's purchase names both members
and the purchase, an over-refund shows both amounts alike, a private webhook URL says
how it can be allowed from the API, and a refund's trace names transactions by their
integer ids as its ``transactions`` do."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from fidelite.processing.tables import events as processed_events
from tests.api.conftest import Live

GHOST = {
    "type": "https://fidelite.dev/problems/unknown_member", "title": "unknown member",
    "status": 404, "detail": "no member 'GHOST' in program 'shop'", "code": "unknown_member",
    "field": "member_ref",
}  # fmt: skip


def test_every_route_words_an_unknown_member_alike(live: Live) -> None:
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/v1/members/GHOST", None),
        ("GET", "/v1/members/GHOST/balance", None),
        ("GET", "/v1/members/GHOST/timeline", None),
        ("GET", "/v1/members/GHOST/export", None),
        ("PATCH", "/v1/members/GHOST", {"segments": ["vip"]}),
        ("POST", "/v1/members/GHOST/adjustments", {"points": 5, "reason": "x"}),
        ("POST", "/v1/redemptions", {"member": "GHOST", "reward": "ten"}),
        ("POST", "/v1/coupon-campaigns/welcome/coupons", {"count": 1, "member": "GHOST"}),
        ("POST", "/v1/members/GHOST/tier:assign",
         {"tier": "silver", "until": "2099-01-01T00:00:00Z", "reason": "x"}),
    ]  # fmt: skip
    with live.client("admin") as c:
        answers = [
            c.request(method, path, json=body, headers={"Idempotency-Key": f"k{i}"})
            for i, (method, path, body) in enumerate(calls)
        ]
    assert [(a.status_code, a.json()) for a in answers] == [(404, GHOST)] * len(calls)
    assert live.ledger_rows() == 0


def event(event_id: str, kind: str, member: str, amount: str, **more: str) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "member": member, "amount": amount,
            "at": "2026-11-20T10:00:00Z", **more}  # fmt: skip


def test_a_refund_of_another_members_purchase_names_both_and_the_purchase(
    live: Live,
) -> None:
    with live.client("admin") as c:
        c.post("/v1/events", json=event("p1", "purchase", "ann", "100.00"))
        rows = live.ledger_rows()
        other = c.post("/v1/events", json=event("r2", "refund", "bob", "10", refund_of="p1"))
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]["available"]
    assert (other.status_code, other.json()["code"]) == (422, "member_mismatch")
    assert other.json()["detail"] == (
        "the refund names member 'bob', but purchase 'p1' belongs to member 'ann'"
    )
    assert (live.ledger_rows(), balance) == (rows, 100)


def test_an_over_refund_shows_both_amounts_alike(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/events", json=event("p1", "purchase", "ann", "100.00"))
        c.post("/v1/events", json=event("r1", "refund", "ann", "30.5", refund_of="p1"))
        rows = live.ledger_rows()
        over = c.post("/v1/events", json=event("r3", "refund", "ann", "200", refund_of="p1"))
        whole = c.post("/v1/events", json=event("r4", "refund", "ann", "200.00",
                                                refund_of="p1"))  # fmt: skip
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]["available"]
    assert (over.status_code, over.json()["code"]) == (422, "refund_exceeds_purchase")
    assert over.json()["detail"] == "refund of 200 exceeds the 69.5 left"  # not 69.5000
    assert whole.json()["detail"] == "refund of 200 exceeds the 69.5 left"  # not 200.00
    assert (live.ledger_rows(), balance) == (rows, 100 - 30)


def test_a_refund_trace_names_transactions_by_integer_id(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/events", json=event("p1", "purchase", "ann", "100.00"))
        c.post("/v1/events", json=event("r1", "refund", "ann", "100.00", refund_of="p1"))
        bought = c.get("/v1/events/p1").json()
        shown = c.get("/v1/events/r1").json()
        # a refund recorded before named it as text ("6"): read back as an integer too
        with live.db.write() as conn:
            trace = conn.execute(select(processed_events.c.trace).where(
                processed_events.c.event_id == "r1")).scalar_one()  # fmt: skip
            old = [{**line, "transaction_id": str(line["transaction_id"])} for line in trace]
            conn.execute(update(processed_events).where(
                processed_events.c.event_id == "r1").values(trace=old))  # fmt: skip
        shown_old = c.get("/v1/events/r1").json()
    earn = bought["transactions"][0]
    assert shown["trace"] == [{"transaction_id": earn, "currency": "points", "points": 100,
                               "written_off": 0, "debt_added": 0}]  # fmt: skip
    assert isinstance(shown["trace"][0]["transaction_id"], int)
    assert shown_old["trace"] == shown["trace"]
    assert all(isinstance(t, int) for t in shown["transactions"])


def test_a_private_webhook_url_says_the_api_never_allows_it(live: Live) -> None:
    with live.client("admin") as c:
        refused = c.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook",
                                               "event_types": ["points.earned"]})  # fmt: skip
        listed = c.get("/v1/webhooks").json()
    assert (refused.status_code, refused.json()["code"]) == (422, "unsafe_url")
    assert refused.json()["detail"] == (
        "url: host 127.0.0.1 is loopback (this server itself); the API never subscribes "
        "private destinations (there is no allow_private field); for development, "
        "subscribe it with `fidelite webhooks add URL --allow-private`"
    )
    assert listed == {"subscriptions": []}
