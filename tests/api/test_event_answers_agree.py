"""One processed event reads the same wherever it is shown, over real HTTP (SQLite file
and PostgreSQL): its tier changes in the answer to ``POST /v1/events``, in the answer to
its id sent again (one at a time or in a batch) and in ``GET /v1/events/{id}`` are the
same entries, key for key; and a refund, read back, shows what it refunded, as its
answer did."""

from __future__ import annotations

from typing import Any

from fidelite.api.routes.events import BatchResult, EventRecord, EventResult
from tests.api.conftest import Live

# a till in Paris (+01:00), with a time to the microsecond: both must survive the store
AT = "2026-11-20T10:00:00.250000+01:00"


def purchase(event_id: str, amount: str) -> dict[str, Any]:
    return {"id": event_id, "type": "purchase", "member": "ann", "at": AT, "amount": amount}


def refund(event_id: str, amount: str, of: str) -> dict[str, Any]:
    return {"id": event_id, "type": "refund", "member": "ann", "at": "2026-11-21T10:00:00+01:00",
            "amount": amount, "refund_of": of}  # fmt: skip


UPGRADE = {"at": "2026-11-20T09:00:00.250000Z", "kind": "upgrade", "from": "bronze",
           "to": "silver", "value": "1500.0000", "reason": "spend 1500 reached 1000",
           "event_id": "e1", "until": None}  # fmt: skip
REVERSED = {"at": "2026-11-21T09:00:00Z", "kind": "upgrade_reversed", "from": "silver",
            "to": "bronze", "value": "900.0000",
            "reason": "refund: spend 900 no longer reaches 1000", "event_id": "r1",
            "until": None}  # fmt: skip


def test_a_tier_change_reads_the_same_in_every_answer_about_its_event(live: Live) -> None:
    with live.client("integration") as c:
        first = c.post("/v1/events", json=purchase("e1", "1500"))
        again = c.post("/v1/events", json=purchase("e1", "1500"))
        batch = c.post("/v1/events:batch", json={"events": [purchase("e1", "1500")]})
        back = c.post("/v1/events", json=refund("r1", "600", "e1"))
        back_again = c.post("/v1/events", json=refund("r1", "600", "e1"))
        recorded = c.get("/v1/events/e1")
        recorded_refund = c.get("/v1/events/r1")
    assert [r.status_code for r in (first, again, batch, back, back_again)] == [
        201, 200, 200, 201, 200]  # fmt: skip
    assert (recorded.status_code, recorded_refund.status_code) == (200, 200)
    entries = [first.json()["tier_changes"], again.json()["tier_changes"],
               batch.json()["results"][0]["tier_changes"],
               recorded.json()["tier_changes"]]  # fmt: skip
    assert entries == [[UPGRADE]] * 4
    refund_entries = [back.json()["tier_changes"], back_again.json()["tier_changes"],
                      recorded_refund.json()["tier_changes"]]  # fmt: skip
    assert refund_entries == [[REVERSED]] * 3
    # every answer still matches its documented model
    EventResult.model_validate(first.json())
    BatchResult.model_validate(batch.json())
    EventRecord.model_validate(recorded.json())


def test_a_refund_read_back_shows_what_it_refunded_as_its_answer_did(live: Live) -> None:
    with live.client("integration") as c:
        bought = c.post("/v1/events", json=purchase("e1", "1500")).json()
        back = c.post("/v1/events", json=refund("r1", "600", "e1"))
        the_refund = c.get("/v1/events/r1").json()
        the_purchase = c.get("/v1/events/e1").json()
    assert (back.status_code, back.json()["points"]) == (201, {"points": -600})
    # the refund: the purchase it refunds, the amount it refunded, the points it took back
    assert {k: the_refund[k] for k in ("refund_of", "amount", "refunded_amount", "points",
                                       "reversed", "refunds")} == {
        "refund_of": "e1", "amount": "600.0000", "refunded_amount": "600.0000",
        "points": {"points": -600}, "reversed": {"points": 600}, "refunds": [],
    }  # fmt: skip
    # the purchase: how much of it has been refunded so far, and by which refund
    assert {k: the_purchase[k] for k in ("refunded_amount", "points", "reversed",
                                         "refunds")} == {
        "refunded_amount": "600.0000", "points": {"points": 1500}, "reversed": {"points": 600},
        "refunds": [{"event_id": "r1", "at": "2026-11-21T09:00:00Z", "amount": "600.0000",
                     "points": {"points": -600}}],
    }  # fmt: skip
    assert bought["points"] == {"points": 1500}
