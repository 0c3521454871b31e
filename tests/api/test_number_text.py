"""A number written as text (an event's amount, a basket line's price or quantity) is
plain digits: ``"1_000"`` (which Python reads as 1000) or other digits than 0-9 are
refused with 422 naming the field, and nothing is written; spaces around the text are
dropped, as the import drops them around its cells, so ``" 10 "`` is 10 in the API and
in a file alike, where an amount cell ``1_000`` is rejected naming the cell. Real HTTP,
SQLite file and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.conftest import Live
from tests.api.test_erased_event_records import import_rows

PURCHASE = {"type": "purchase", "member": "ann", "at": "2026-11-20T10:00:00+01:00"}
PROBLEM = "application/problem+json"
PLAIN = ("must be a number written with the digits 0-9 and a point as the decimal separator "
         "(no _, no thousands separator), got {}")  # fmt: skip


def refusal(location: str, got: str) -> dict[str, Any]:
    message = PLAIN.format(got)
    return {"type": "https://fidelite.dev/problems/invalid_request", "title": "invalid request",
            "status": 422, "detail": f"{location}: {message}", "code": "invalid_request",
            "errors": [{"location": location, "message": message}]}  # fmt: skip


def test_numbers_with_underscores_are_refused_and_nothing_is_written(live: Live) -> None:
    line = {"sku": "A", "price": "5", "quantity": 1}
    sent: list[tuple[dict[str, Any], str, str]] = [
        ({**PURCHASE, "amount": "1_000"}, "body.amount", '"1_000"'),
        ({**PURCHASE, "amount": "\u0661\u0660"}, "body.amount", '"\\u0661\\u0660"'),
        ({**PURCHASE, "amount": "5", "items": [{**line, "price": "1_0"}]},
         "body.items.0.price", '"1_0"'),
        ({**PURCHASE, "amount": "5", "items": [{**line, "quantity": "1_0"}]},
         "body.items.0.quantity", '"1_0"'),
    ]  # fmt: skip
    with live.client("integration") as c:
        for body, location, got in sent:
            refused = c.post("/v1/events", json={**body, "id": "e1"})
            assert (refused.status_code, refused.headers["content-type"]) == (422, PROBLEM)
            assert refused.json() == refusal(location, got)
        batch = c.post("/v1/events:batch", json={"events": [
            {**PURCHASE, "id": "e1", "amount": "1_000"},
            {**PURCHASE, "id": "e2", "amount": " 10 "},
        ]})  # fmt: skip
        assert batch.status_code == 200
        first, second = batch.json()["results"]
        assert (first["event_id"], first["outcome"], first["problem"]["errors"]) == (
            "e1", "rejected",
            [{"location": "body.events.0.amount", "message": PLAIN.format('"1_000"')}],
        )  # fmt: skip
        assert (second["outcome"], second["points"]) == ("processed", {"points": 10})
        assert live.ledger_rows() == 1
        assert c.get("/v1/events/e1").status_code == 404
        spaced = c.post("/v1/events", json={**PURCHASE, "id": "e3", "amount": " 12.50 "})
        assert (spaced.status_code, spaced.json()["points"]) == (201, {"points": 12})
        assert c.get("/v1/events/e3").json()["amount"] == "12.5000"


def test_import_rejects_an_amount_with_underscores(live: Live, tmp_path: Path) -> None:
    summary, rejects = import_rows(live, tmp_path, [
        ["e1", "purchase", "ann", "2026-11-02T10:00:00+00:00", "1_000"],
        ["e2", "purchase", "ann", "2026-11-02T11:00:00+00:00", " 10 "],
    ])  # fmt: skip
    assert (summary["rows"], summary["processed"], summary["rejected"]) == (2, 1, 1)
    assert rejects == [
        ["row", "event_id", "code", "message"],
        ["2", "e1", "invalid_row", "amount: '1_000' is not a number; write digits with a "
         "point as the decimal separator (e.g. 12.50)"],
    ]  # fmt: skip
    assert live.ledger_rows() == 1
    with live.client() as c:
        assert c.get("/v1/events/e2").json()["points"] == {"points": 10}
