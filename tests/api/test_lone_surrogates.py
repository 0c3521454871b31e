"""Text a lone surrogate breaks (``"\\ud800"`` in JSON: valid JSON, half of a character
that no UTF-8 answer or database column can carry) in a bulk call, over real HTTP on a
SQLite file and on PostgreSQL.

It answered 500 ("nothing was changed") after the call had committed the other
members' credits or the batch's other events: the answer repeated the value and could
not be encoded. A bulk adjustment naming such a member (or reason) is now refused
whole, before anything is done, as any body that is not valid (``invalid_request``
naming the field); an event of a batch holding one is rejected in its place
(``invalid_event``), the others processed. An answer that would still hold one is sent
(and stored) with U+FFFD in its place, never as a 500 after a commit."""

from __future__ import annotations

import json
from typing import Any

from fidelite.api.idempotency import run_once
from tests.api.conftest import Live

JSON = {"content-type": "application/json"}


def lone(position: int) -> str:
    return (f"must be text UTF-8 can encode: character {position} is a lone surrogate "
            "(U+D800), half of a character")  # fmt: skip


def _available(c: Any, member: str) -> int:
    return int(c.get(f"/v1/members/{member}/balance").json()["balances"][0]["available"])


def test_a_bulk_adjustment_naming_a_lone_surrogate_is_refused_whole(live: Live) -> None:
    with live.client("admin") as c:
        for who in ("ann", "bo"):
            assert c.post("/v1/members", json={"id": who}).status_code == 201
        rows = live.ledger_rows()
        sent = b'{"members": ["ann", "x\\ud800", "bo"], "points": 7, "reason": "outage"}'
        key = {"Idempotency-Key": "bulk-1"}
        for _ in range(2):  # not stored: the same key refused again, the same way
            out = c.post("/v1/adjustments:bulk", content=sent, headers=JSON | key)
            assert (out.status_code, out.headers["content-type"]) == (
                422, "application/problem+json",
            )  # fmt: skip
            assert out.json()["code"] == "invalid_request"
            assert out.json()["errors"] == [{"location": "body.members.1", "message": lone(2)}]
            assert (_available(c, "ann"), _available(c, "bo"), live.ledger_rows()) == (0, 0, rows)
        reason = b'{"members": ["ann"], "points": 7, "reason": "\\ud800 outage"}'
        out = c.post("/v1/adjustments:bulk", content=reason, headers=JSON | key)
        assert out.status_code == 422
        assert out.json()["errors"] == [{"location": "body.reason", "message": lone(1)}]
        assert (_available(c, "ann"), live.ledger_rows()) == (0, rows)
        # the key was not taken: the corrected call runs under it, once
        fixed = {"members": ["ann", "bo"], "points": 7, "reason": "outage"}
        for replayed in (False, True):
            out = c.post("/v1/adjustments:bulk", json=fixed, headers=key)
            assert out.status_code == 200
            assert (out.json()["credited"], out.json()["refused"]) == (2, 0)
            assert [r["replayed"] for r in out.json()["results"]] == [replayed, replayed]
        assert (_available(c, "ann"), _available(c, "bo"), live.ledger_rows()) == (7, 7, rows + 2)


def test_a_lone_surrogate_in_a_single_adjustment_is_refused(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        rows = live.ledger_rows()
        out = c.post("/v1/members/ann/adjustments", headers=JSON | {"Idempotency-Key": "a1"},
                     content=b'{"points": 5, "reason": "ok\\udfff"}')  # fmt: skip
        assert out.status_code == 422
        assert out.json()["errors"] == [{
            "location": "body.reason",
            "message": lone(3).replace("U+D800", "U+DFFF"),
        }]  # fmt: skip
        assert (_available(c, "ann"), live.ledger_rows()) == (0, rows)


GOOD = {"id": "g1", "type": "purchase", "member": "ann", "at": "2026-01-01T00:00:00Z",
        "amount": "40"}  # fmt: skip


def _batch(bad: str, kind: str = "purchase") -> bytes:
    """A batch: GOOD, then an event of type ``kind`` whose field text is ``bad`` (raw
    JSON of the field)."""
    second = json.dumps({**GOOD, "id": "g2", "type": kind, "amount": "1"})
    return f'{{"events": [{json.dumps(GOOD)}, {second[:-1]}, {bad}}}]}}'.encode()


def test_a_batch_event_holding_a_lone_surrogate_is_rejected_in_its_place(live: Live) -> None:
    with live.client("integration") as c:
        raw = _batch('"coupon": "WELC\\ud800"').replace(b'"id": "g2"', b'"id": "g\\ud800"')
        key = {"Idempotency-Key": "batch-1"}
        out = c.post("/v1/events:batch", content=raw, headers=JSON | key)
        assert out.status_code == 200
        first, second = out.json()["results"]
        assert (first["event_id"], first["outcome"], first["points"]) == (
            "g1", "processed", {"points": 40},
        )  # fmt: skip
        assert second == {"event_id": None, "outcome": "rejected", "problem": {
            "type": "https://fidelite.dev/problems/invalid_event", "title": "invalid event",
            "status": 422, "code": "invalid_event",
            "detail": f"body.events.1.id: {lone(2)}",
            "errors": [{"location": "body.events.1.id", "message": lone(2)},
                       {"location": "body.events.1.coupon", "message": lone(5)}]}}  # fmt: skip
        again = c.post("/v1/events:batch", content=raw, headers=JSON | key)
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
        assert again.json()["results"][1] == second
        assert (_available(c, "ann"), live.ledger_rows()) == (40, 1)
        refund = _batch('"refund_of": "\\ud800"', "refund").replace(b'"g1"', b'"g3"')
        out = c.post("/v1/events:batch", content=refund)
        assert out.status_code == 200
        first, second = out.json()["results"]
        assert (first["event_id"], first["outcome"]) == ("g3", "processed")
        assert (second["event_id"], second["problem"]["errors"]) == (
            "g2", [{"location": "body.events.1.refund_of", "message": lone(1)}],
        )  # fmt: skip
        assert c.get("/v1/events/g2").status_code == 404
        assert (_available(c, "ann"), live.ledger_rows()) == (80, 2)


def test_an_answer_holding_a_lone_surrogate_is_sent_and_stored_encodable(live: Live) -> None:
    """The last defence: an answer the route built with such text is still sent (U+FFFD
    in its place) and stored for the key's retry, not a 500 after its change."""
    calls: list[int] = []

    def run() -> tuple[int, Any]:
        calls.append(1)
        return 200, {"member": "x\ud800y", "\udfff": ["\ud800"]}

    for replayed in (None, "true"):
        out = run_once(live.db, "shop", "k-1", "POST /v1/test", {"a": 1}, run)
        assert (out.status_code, out.headers.get("Idempotent-Replayed")) == (200, replayed)
        assert out.body.decode("utf-8") == '{"member":"x\ufffdy","\ufffd":["\ufffd"]}'
    assert calls == [1]
    plain = run_once(live.db, "shop", None, "POST /v1/test", {}, lambda: (201, ["\ud800"]))
    assert (plain.status_code, plain.body) == (201, '["\ufffd"]'.encode())
