"""An amount a client computed in binary floating point (0.1 + 0.2 sent as the JSON
number 0.30000000000000004) is read as 0.3, and sent again is a duplicate, not an
``event_id_conflict``. Real HTTP, SQLite file and PostgreSQL."""

from __future__ import annotations

from fidelite.ledger import assert_invariants
from tests.api.conftest import Live

PURCHASE = {"type": "purchase", "member": "ann", "at": "2026-11-20T10:00:00+01:00"}


def test_a_double_s_noise_is_dropped_and_the_event_sent_again_is_a_duplicate(
    live: Live,
) -> None:
    sent = {**PURCHASE, "id": "e1", "amount": 11 + 0.1 + 0.2}  # 11.299999999999999
    assert repr(sent["amount"]) == "11.299999999999999"
    with live.client("integration") as c:
        first = c.post("/v1/events", json=sent)
        assert (first.status_code, first.json()["points"]) == (201, {"points": 11})
        again = c.post("/v1/events", json=sent)
        assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
        assert c.post("/v1/events", json={**sent, "amount": "11.3"}).status_code == 200
        recorded = c.get("/v1/events/e1").json()
        assert recorded["amount"] == "11.3000"
        assert live.ledger_rows() == 1
    assert_invariants(live.db, "shop")
