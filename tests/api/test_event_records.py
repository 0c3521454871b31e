"""An event as recorded, over real HTTP (SQLite file and PostgreSQL): an event id sent
again is answered with what the event got the first time, another event under a
recorded id is a conflict, and ``GET /v1/events/{id}`` explains a past event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fidelite.api.routes.events import BatchResult, EventResult
from tests.api.conftest import Live

AT = "2026-11-20T10:00:00+01:00"
PROBLEM = "application/problem+json"


def purchase(event_id: str, amount: str, member: str = "ann", at: str = AT) -> dict[str, Any]:
    return {"id": event_id, "type": "purchase", "member": member, "at": at, "amount": amount}


def refund(event_id: str, amount: str, of: str) -> dict[str, Any]:
    return {"id": event_id, "type": "refund", "member": "ann", "at": "2026-11-21T10:00:00+01:00",
            "amount": amount, "refund_of": of}  # fmt: skip


def conflict(event_id: str, told: str) -> dict[str, Any]:
    return {
        "type": "https://fidelite.dev/problems/event_id_conflict", "title": "event id conflict",
        "status": 409, "code": "event_id_conflict",
        "detail": f"event '{event_id}' is recorded with other values ({told}): a new event "
        "needs a new id; to repeat the event, send it as it was first sent",
    }  # fmt: skip


def test_an_event_id_sent_again_answers_what_the_event_got_the_first_time(live: Live) -> None:
    with live.client("integration") as c:
        first = c.post("/v1/events", json=purchase("e1", "1500"), headers={"Idempotency-Key": "k1"})
        assert first.status_code == 201
        transactions = first.json()["transactions"]
        rows = live.ledger_rows()
        expected = {
            "event_id": "e1", "outcome": "duplicate", "points": {"points": 1500},
            "transactions": transactions,
            "tier_changes": [{"at": "2026-11-20T09:00:00Z", "kind": "upgrade",
                              "from": "bronze", "to": "silver", "value": "1500.0000",
                              "reason": "spend 1500 reached 1000", "event_id": "e1",
                              "until": None}],
            "trace_id": "event:e1",
            "decision": {"event_id": "e1", "member": "ann", "at": "2026-11-20T09:00:00+00:00",
                         "trace": [{"rule": "base", "outcome": "matched", "points": 1500,
                                    "currency": "points"}]},
        }  # fmt: skip
        # the till lost its key: a new one, or none, for the same event
        again = c.post("/v1/events", json=purchase("e1", "1500"), headers={"Idempotency-Key": "k2"})
        assert (again.status_code, again.json()) == (200, expected)
        bare = c.post("/v1/events", json=purchase("e1", "1500.00"))
        assert (bare.status_code, bare.json()) == (200, expected)
        replayed = c.post("/v1/events", json=purchase("e1", "1500"),
                          headers={"Idempotency-Key": "k2"})  # fmt: skip
        assert (replayed.status_code, replayed.json()) == (200, expected)
        assert replayed.headers["idempotent-replayed"] == "true"
        EventResult.model_validate(again.json())
        assert live.ledger_rows() == rows

        back = c.post("/v1/events", json=refund("r1", "1000", "e1"))
        assert back.status_code == 201
        refund_again = c.post("/v1/events", json=refund("r1", "1000", "e1"))
        assert (refund_again.status_code, refund_again.json()) == (200, {
            "event_id": "r1", "outcome": "duplicate", "points": {"points": -1000},
            "transactions": back.json()["transactions"],
            "tier_changes": [{"at": "2026-11-21T09:00:00Z", "kind": "upgrade_reversed",
                              "from": "silver", "to": "bronze", "value": "500.0000",
                              "reason": "refund: spend 500 no longer reaches 1000",
                              "event_id": "r1", "until": None}],
            "trace_id": "event:r1", "decision": None,
        })  # fmt: skip
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
        assert balance["available"] == 500


def test_another_event_under_a_recorded_id_is_a_conflict(live: Live) -> None:
    with live.client("integration") as c:
        assert c.post("/v1/events", json=purchase("e1", "42.90")).status_code == 201
        rows = live.ledger_rows()
        cases = [
            (purchase("e1", "42.90", member="bob"), "member 'ann' recorded, 'bob' sent"),
            (purchase("e1", "50"), "amount '42.9000' recorded, '50.0000' sent"),
            (purchase("e1", "42.90", at="2026-11-20T11:00:00+01:00"),
             "at 2026-11-20T09:00:00+00:00 recorded, 2026-11-20T10:00:00+00:00 sent"),
            ({**purchase("e1", "42.90"), "type": "review"},
             "type 'purchase' recorded, 'review' sent"),
            (purchase("e1", "1", member="bob"),
             "member 'ann' recorded, 'bob' sent; amount '42.9000' recorded, '1.0000' sent"),
        ]  # fmt: skip
        for body, told in cases:
            out = c.post("/v1/events", json=body, headers={"Idempotency-Key": f"c-{told}"})
            assert (out.status_code, out.headers["content-type"]) == (409, PROBLEM), told
            assert out.json() == conflict("e1", told)
        assert live.ledger_rows() == rows
        assert c.get("/v1/members/bob").status_code == 404
        # the same time written with another offset is the same event
        same = c.post("/v1/events", json=purchase("e1", "42.90", at="2026-11-20T09:00:00Z"))
        assert (same.status_code, same.json()["points"]) == (200, {"points": 42})


def test_a_batch_answers_repeated_ids_as_single_events_do(live: Live) -> None:
    with live.client("integration") as c:
        first = c.post("/v1/events", json=purchase("e1", "42.90")).json()
        out = c.post("/v1/events:batch", json={"events": [
            purchase("e2", "10"), purchase("e2", "10"), purchase("e1", "42.90"),
            purchase("e1", "43"), purchase("e2", "10", member="bob"),
        ]})  # fmt: skip
        assert out.status_code == 200
        results = BatchResult.model_validate(out.json()) and out.json()["results"]
    assert [r["outcome"] for r in results] == [
        "processed", "duplicate", "duplicate", "rejected", "rejected",
    ]  # fmt: skip

    def trace(points: int) -> list[dict[str, Any]]:
        return [{"rule": "base", "outcome": "matched", "points": points, "currency": "points"}]

    at = "2026-11-20T09:00:00+00:00"
    assert results[1] == {
        "event_id": "e2", "outcome": "duplicate", "points": {"points": 10},
        "transactions": results[0]["transactions"], "tier_changes": [], "trace_id": "event:e2",
        "decision": {"event_id": "e2", "member": "ann", "at": at, "trace": trace(10)},
    }  # fmt: skip
    assert results[2] == {
        "event_id": "e1", "outcome": "duplicate", "points": {"points": 42},
        "transactions": first["transactions"], "tier_changes": [], "trace_id": "event:e1",
        "decision": {"event_id": "e1", "member": "ann", "at": at, "trace": trace(42)},
    }  # fmt: skip
    assert results[3] == {"event_id": "e1", "outcome": "rejected", "problem": conflict(
        "e1", "amount '42.9000' recorded, '43.0000' sent")}  # fmt: skip
    assert results[4] == {"event_id": "e2", "outcome": "rejected", "problem": conflict(
        "e2", "member 'ann' recorded, 'bob' sent")}  # fmt: skip


def test_a_past_event_is_explained_with_its_trace_and_refunds(live: Live) -> None:
    from fidelite.api.routes.events import EventRecord

    with live.client("integration") as c:
        bought = c.post("/v1/events", json=purchase("e1", "1500")).json()
        back = c.post("/v1/events", json=refund("r1", "600", "e1")).json()
    before = datetime.now(UTC)
    with live.client("analyst") as c:  # a read: every role may
        got = c.get("/v1/events/e1")
        refunded = c.get("/v1/events/r1")
        missing = c.get("/v1/events/nope")
    assert got.status_code == 200
    body = got.json()
    EventRecord.model_validate(body)
    assert datetime.fromisoformat(body.pop("recorded_at")) < before
    assert body == {
        "event_id": "e1", "outcome": "processed", "type": "purchase", "member": "ann",
        "at": "2026-11-20T09:00:00Z", "amount": "1500.0000", "refund_of": None,
        "coupon": None, "coupon_accepted": None, "points": {"points": 1500},
        "transactions": bought["transactions"],
        "tier_changes": [{"at": "2026-11-20T09:00:00Z", "kind": "upgrade", "from": "bronze",
                          "to": "silver", "value": "1500.0000",
                          "reason": "spend 1500 reached 1000", "event_id": "e1",
                          "until": None}],
        "trace": [{"rule": "base", "outcome": "matched", "points": 1500, "currency": "points"}],
        "refunded_amount": "600.0000", "reversed": {"points": 600},
        "refunds": [{"event_id": "r1", "at": "2026-11-21T09:00:00Z", "amount": "600.0000",
                     "points": {"points": -600}}],
    }  # fmt: skip
    record = refunded.json()
    record.pop("recorded_at")
    assert record == {
        "event_id": "r1", "outcome": "processed", "type": "refund", "member": "ann",
        "at": "2026-11-21T09:00:00Z", "amount": "600.0000", "refund_of": "e1",
        "coupon": None, "coupon_accepted": None, "points": {"points": -600},
        "transactions": back["transactions"],
        "tier_changes": [{"at": "2026-11-21T09:00:00Z", "kind": "upgrade_reversed",
                          "from": "silver", "to": "bronze", "value": "900.0000",
                          "reason": "refund: spend 900 no longer reaches 1000",
                          "event_id": "r1", "until": None}],
        "trace": [{"transaction_id": bought["transactions"][0], "currency": "points",
                   "points": 600, "written_off": 0, "debt_added": 0}],
        "refunded_amount": "600.0000", "reversed": {"points": 600}, "refunds": [],
    }  # fmt: skip
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    assert missing.json() == {
        "type": "https://fidelite.dev/problems/unknown_event", "title": "unknown event",
        "status": 404, "detail": "no event 'nope' in this program", "code": "unknown_event",
    }  # fmt: skip
