"""The 360° timeline lists what happened by when it happened (``at``), newest first,
whatever the order it was recorded in; at equal times the most recently recorded first,
so a tier change comes before the points movement that caused it. The ledger history,
by contrast, is most recently recorded first; the webhook delivery log most recently
created first. The API's descriptions say so."""

from __future__ import annotations

from typing import Any

from fidelite.api.app import create_app
from fidelite.program import parse_program
from tests.api.conftest import PROGRAM, Live


def purchase(event_id: str, amount: str, at: str) -> dict[str, Any]:
    return {"id": event_id, "type": "purchase", "member": "ann", "amount": amount, "at": at}


def test_timeline_is_by_time_even_when_an_earlier_event_is_recorded_later(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann"})
        late = c.post("/v1/events", json=purchase("late", "30", "2026-11-20T10:00:00Z"))
        early = c.post("/v1/events", json=purchase("early", "1000", "2026-11-20T09:00:00Z"))
        redeemed = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"},
                          headers={"Idempotency-Key": "r1"})  # fmt: skip
        assert (late.status_code, early.status_code, redeemed.status_code) == (201, 201, 201)
        timeline = c.get("/v1/members/ann/timeline").json()["timeline"]
        ledger = c.get("/v1/members/ann/ledger").json()["entries"]
    spend_at = ledger[0]["occurred_at"]
    assert spend_at > "2026-11-20T10:00:00Z"
    spend, earn_early, earn_late = (e["transaction_id"] for e in ledger)

    def moved(tid: int, points: int) -> dict[str, int]:
        return {
            "transaction_id": tid,
            "transaction_points": points,
            "available_change": points,
            "pending_change": 0,
            "debt_change": 0,
        }

    assert timeline == [
        {"at": spend_at, "kind": "points.spend", "currency": "points", "points": -10,
         "reason": "reward ten", "source": "ten", **moved(spend, -10)},
        {"at": "2026-11-20T10:00:00Z", "kind": "points.earn", "currency": "points",
         "points": 30, "reason": "purchase", "source": "late", **moved(earn_late, 30)},
        {"at": "2026-11-20T09:00:00Z", "kind": "tier.upgrade", "from": "bronze",
         "to": "silver", "value": "1000.0000", "reason": "spend 1000 reached 1000",
         "event_id": "early", "until": None},
        {"at": "2026-11-20T09:00:00Z", "kind": "points.earn", "currency": "points",
         "points": 1000, "reason": "purchase", "source": "early", **moved(earn_early, 1000)},
    ]  # fmt: skip
    # the ledger history is by recording: the earlier-dated purchase, recorded last, above
    assert [(e["kind"], e["source"]) for e in ledger] == [
        ("spend", "ten"), ("earn", "early"), ("earn", "late"),
    ]  # fmt: skip


def described(doc: dict[str, Any], path: str) -> str:
    return " ".join(doc["paths"][path]["get"]["description"].split())


def test_timeline_and_delivery_log_descriptions_say_which_order() -> None:
    doc = create_app("sqlite://", parse_program(PROGRAM)).openapi()
    timeline = described(doc, "/v1/members/{member_id}/timeline")
    assert timeline.startswith("The 360° view: profile, then points movements (redemptions "
                               "among them) and tier changes by when they happened (``at``), "
                               "newest first.")  # fmt: skip
    field = doc["components"]["schemas"]["Timeline"]["properties"]["timeline"]["description"]
    assert field.startswith("the 200 most recently recorded ledger transactions")
    assert "by their time `at`, newest first" in field
    log = described(doc, "/v1/webhooks/deliveries")
    assert log.startswith("The delivery log, most recently created first (by delivery id, not")
    assert "newest first" not in log
    log_model = doc["components"]["schemas"]["DeliveryLog"]["description"]
    assert log_model == "Deliveries, most recently created first (by delivery id): one page."
