"""An event of a member erased since, sent again with the member's former reference
(a till's retry): answered as a duplicate with nothing of the erased account's history
(no points, ledger transactions, tier changes or decision), so neither the answer nor
the answer stored under the request's Idempotency-Key links the reference to the
anonymised account; sent again with other values, the conflict tells the values sent,
never those recorded, through the API and in the import's rejects file. Nothing is
written. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fidelite.api.tables import api_requests
from tests.api.conftest import Live
from tests.api.test_erased_event_records import NEW_ID, import_rows, purchase, state

ERASED: dict[str, Any] = {
    "event_id": "e1", "outcome": "duplicate", "points": {}, "transactions": [],
    "tier_changes": [], "trace_id": "event:e1", "decision": None,
}  # fmt: skip
CONFLICT: dict[str, Any] = {"type": "https://fidelite.dev/problems/event_id_conflict",
            "title": "event id conflict", "status": 409, "code": "event_id_conflict",
            "detail": "event 'e1' is recorded with other values (amount '1060.0000' sent, "
            f"not as recorded for a member erased since): {NEW_ID}"}  # fmt: skip


def stored(live: Live) -> dict[str, Any]:
    """The answers stored under each Idempotency-Key."""
    with live.db.read() as conn:
        rows = conn.execute(select(api_requests.c.idem_key, api_requests.c.body)).all()
    return {key: json.loads(b) if isinstance(b, str) else b for key, b in rows}


def test_an_erased_members_event_sent_again_tells_nothing_of_its_history(
    live: Live, tmp_path: Path
) -> None:
    first = purchase("e1", "ann", "2026-11-02T10:00:00Z", "1050")  # 1050 points, to silver
    with live.client() as client:
        made = client.post("/v1/events", json=first)
        assert made.status_code == 201
        assert (made.json()["transactions"], len(made.json()["tier_changes"])) == ([1], 1)
        tombstone = client.delete("/v1/members/ann").json()["tombstone"]
        before = state(live, client, tombstone)
        single = client.post("/v1/events", json=first, headers={"Idempotency-Key": "retry-1"})
        replayed = client.post("/v1/events", json=first, headers={"Idempotency-Key": "retry-1"})
        batch = client.post("/v1/events:batch", json={"events": [first]},
                            headers={"Idempotency-Key": "retry-2"})  # fmt: skip
        changed = {**first, "amount": "1060"}
        other = client.post("/v1/events", json=changed, headers={"Idempotency-Key": "retry-3"})
        other_batch = client.post("/v1/events:batch", json={"events": [changed]})
        assert state(live, client, tombstone) == before
        assert client.get("/v1/members/ann").status_code == 404  # not enrolled again
    assert (single.status_code, single.json()) == (200, ERASED)
    assert (replayed.status_code, replayed.json()) == (200, ERASED)
    assert (batch.status_code, batch.json()) == (200, {"results": [ERASED]})
    assert (other.status_code, other.json()) == (409, CONFLICT)
    assert other_batch.json() == {"results": [
        {"event_id": "e1", "outcome": "rejected", "problem": CONFLICT},
    ]}  # fmt: skip
    for answer in (single, batch, other, other_batch):
        assert tombstone not in answer.text and "1050" not in answer.text
    # the answers stored with the reference in clear hold none of the erased history
    # the answers stored under the keys hold none of the erased history either
    assert stored(live) == {"retry-1": ERASED, "retry-2": {"results": [ERASED]},
                            "retry-3": CONFLICT}  # fmt: skip

    # the same rows imported: a duplicate, and a conflict not telling the recorded amount
    with live.client() as client:
        before = state(live, client, tombstone)
        summary, rejects = import_rows(live, tmp_path, [
            ["e1", "purchase", "ann", "2026-11-02T10:00:00+00:00", "1050"],
            ["e1", "purchase", "ann", "2026-11-02T10:00:00+00:00", "1060"],
        ])  # fmt: skip
        assert state(live, client, tombstone) == before
    assert (summary["rows"], summary["processed"], summary["duplicates"],
            summary["rejected_by_code"]) == (2, 0, 1, {"event_id_conflict": 1})  # fmt: skip
    assert rejects == [
        ["row", "event_id", "code", "message"],
        ["3", "e1", "event_id_conflict", CONFLICT["detail"]],
    ]
