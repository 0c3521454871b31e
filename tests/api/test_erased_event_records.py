"""After a member's erasure, through the API over real HTTP and through
``fidelite import events``:

- an event recorded before the erasure is read back (``GET /v1/events/{id}``) without
  its member: the record names no tombstone, which would link the event id (and the
  reference the client knows it by) to the anonymised account;
- the same event id sent again with other values is ``event_id_conflict`` naming the
  member it was recorded for as erased, never by its tombstone;
- an event dated at or before the erasure is refused with ``member_erased`` even when
  the reference was enrolled again since with a join date set by hand before the
  erasure, as the import refuses it.

Non-erased members' records and conflicts are answered as before. A refused call
changes nothing. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from fidelite.privacy import erase_member
from fidelite.processing.tables import events
from tests.api.conftest import PROGRAM, Live
from tests.cli.support import fidelite

PROBLEM = "application/problem+json"
ERASED_AT = datetime.fromisoformat("2026-11-20T09:00:00+00:00")
NEW_ID = "a new event needs a new id; to repeat the event, send it as it was first sent"
ERASED_HISTORY = (
    "the member 'ann' was erased on 2026-11-20: an event dated at or before the erasure "
    "belongs to the erased history and is not recorded (an event after it enrols the "
    "reference as a new member)"
)
ERASED_PROBLEM = {
    "type": "https://fidelite.dev/problems/member_erased", "title": "member erased",
    "status": 422, "code": "member_erased", "detail": ERASED_HISTORY,
}  # fmt: skip


def purchase(event_id: str, member: str, when: str, amount: str) -> dict[str, str]:
    return {"id": event_id, "type": "purchase", "member": member, "at": when, "amount": amount}


def record(event_id: str, member: str | None, when: str, amount: str, points: int,
           transaction: int) -> dict[str, Any]:  # fmt: skip
    """``GET /v1/events/{id}`` of a purchase earning ``points`` under the rule base."""
    return {
        "event_id": event_id, "outcome": "processed", "type": "purchase", "member": member,
        "at": when, "amount": amount, "refund_of": None, "coupon": None,
        "coupon_accepted": None, "points": {"points": points}, "transactions": [transaction],
        "tier_changes": [],
        "trace": [{"rule": "base", "outcome": "matched", "points": points,
                   "currency": "points"}],
        "refunded_amount": "0.0000", "reversed": {}, "refunds": [],
    }  # fmt: skip


def state(live: Live, client: httpx.Client, *members: str) -> dict[str, Any]:
    """What a refused call must leave as it was: events recorded, ledger transactions,
    each member's balance."""
    with live.db.read() as conn:
        recorded = conn.execute(select(func.count()).select_from(events)).scalar_one()
    balances = {m: [{k: v for k, v in row.items() if k != "as_of"}
                    for row in client.get(f"/v1/members/{m}/balance").json()["balances"]]
                for m in members}  # fmt: skip
    return {"events": recorded, "transactions": live.ledger_rows(), "balances": balances}


def without_recorded_at(body: dict[str, Any]) -> dict[str, Any]:
    assert body["recorded_at"].endswith("Z")
    return {k: v for k, v in body.items() if k != "recorded_at"}


def import_rows(
    live: Live, tmp_path: Path, rows: list[list[str]]
) -> tuple[dict[str, Any], list[list[str]]]:
    """``fidelite import events`` of ``rows``: its JSON summary and its rejects file."""
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    path = tmp_path / "events.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["event_id", "type", "member", "at", "amount"], *rows])
    rejects = tmp_path / "rejects.csv"
    proc = fidelite("import", "events", path, "--program", program, "--rejects", rejects,
                    "--format", "json", db=live.db.url)  # fmt: skip
    summary = json.loads(proc.stdout)
    if not rejects.exists():  # no row rejected: no rejects file
        assert summary["rejected"] == 0
        return summary, []
    with rejects.open(encoding="utf-8", newline="") as handle:
        return summary, list(csv.reader(handle))


# ------------------------------------------------ an erased member's event, read back


def test_event_record_of_an_erased_member_names_no_tombstone(live: Live) -> None:
    with live.client() as client:
        assert client.post("/v1/events", json=purchase("e1", "ann", "2026-11-02T10:00:00Z",
                                                       "50")).status_code == 201  # fmt: skip
        assert client.post("/v1/events", json=purchase("b1", "bob", "2026-11-03T10:00:00Z",
                                                       "30")).status_code == 201  # fmt: skip
        first = client.get("/v1/events/e1")
        erased = client.delete("/v1/members/ann")
        assert erased.status_code == 200
        tombstone = erased.json()["tombstone"]
        after = client.get("/v1/events/e1")
        bob = client.get("/v1/events/b1")
        balance = client.get(f"/v1/members/{tombstone}/balance").json()["balances"]
    assert [(b["currency"], b["available"]) for b in balance] == [("points", 50)]
    assert first.status_code == after.status_code == 200
    assert without_recorded_at(first.json()) == record(
        "e1", "ann", "2026-11-02T10:00:00Z", "50.0000", 50, 1
    )
    # after the erasure: the same record, its member masked
    assert after.json() == {**first.json(), "member": None}
    assert tombstone not in after.text and "ann" not in after.text
    # a member not erased is named as before
    assert without_recorded_at(bob.json()) == record(
        "b1", "bob", "2026-11-03T10:00:00Z", "30.0000", 30, 2
    )


# -------------------------------------- an erased member's event id sent again, changed


def test_event_id_conflict_names_no_tombstone(live: Live, tmp_path: Path) -> None:
    with live.client() as client:
        for sent in (purchase("e1", "ann", "2026-11-02T10:00:00Z", "50"),
                     purchase("b1", "bob", "2026-11-03T10:00:00Z", "30")):  # fmt: skip
            assert client.post("/v1/events", json=sent).status_code == 201
        tombstone = client.delete("/v1/members/ann").json()["tombstone"]
        before = state(live, client, "bob", tombstone)
        # e1, recorded for ann (erased since), sent again for bob
        other = client.post("/v1/events", json=purchase("e1", "bob", "2026-11-02T10:00:00Z", "50"))
        batch = client.post("/v1/events:batch", json={"events": [
            purchase("e1", "bob", "2026-11-02T10:00:00Z", "50"),
        ]})  # fmt: skip
        # sent again for ann with another amount: the member is ann's, only the amount
        # differs (the amount recorded, of the erased history, is not told)
        amount = client.post("/v1/events", json=purchase("e1", "ann", "2026-11-02T10:00:00Z", "60"))
        # a member not erased is named as before
        bob = client.post("/v1/events", json=purchase("b1", "cat", "2026-11-03T10:00:00Z", "30"))
        assert state(live, client, "bob", tombstone) == before
    erased_member = (f"event 'e1' is recorded with other values (member (erased) recorded, "
                     f"'bob' sent): {NEW_ID}")  # fmt: skip
    conflict = {"type": "https://fidelite.dev/problems/event_id_conflict",
                "title": "event id conflict", "status": 409,
                "code": "event_id_conflict"}  # fmt: skip
    assert (other.status_code, other.headers["content-type"]) == (409, PROBLEM)
    assert other.json() == {**conflict, "detail": erased_member}
    assert batch.status_code == 200
    assert batch.json() == {"results": [
        {"event_id": "e1", "outcome": "rejected", "problem": {**conflict, "detail": erased_member}},
    ]}  # fmt: skip
    assert (amount.status_code, amount.json()) == (409, {**conflict, "detail": (
        f"event 'e1' is recorded with other values (amount '60.0000' sent, not as recorded "
        f"for a member erased since): {NEW_ID}"
    )})  # fmt: skip
    assert (bob.status_code, bob.json()) == (409, {**conflict, "detail": (
        f"event 'b1' is recorded with other values (member 'bob' recorded, 'cat' sent): "
        f"{NEW_ID}"
    )})  # fmt: skip
    for answer in (other, batch, amount):
        assert tombstone not in answer.text

    # the same rows imported: refused alike, nothing written
    with live.client() as client:
        before = state(live, client, "bob", tombstone)
        summary, rejects = import_rows(live, tmp_path, [
            ["e1", "purchase", "bob", "2026-11-02T10:00:00+00:00", "50"],
            ["b1", "purchase", "cat", "2026-11-03T10:00:00+00:00", "30"],
        ])  # fmt: skip
        assert state(live, client, "bob", tombstone) == before
    assert (summary["rows"], summary["processed"], summary["rejected_by_code"]) == (
        2, 0, {"event_id_conflict": 2},
    )  # fmt: skip
    assert rejects == [
        ["row", "event_id", "code", "message"],
        ["2", "e1", "event_id_conflict", erased_member],
        ["3", "b1", "event_id_conflict", "event 'b1' is recorded with other values (member "
         f"'bob' recorded, 'cat' sent): {NEW_ID}"],
    ]  # fmt: skip


# ------------------- the erased history, for a reference enrolled again with a join date


def test_erased_history_is_refused_for_a_member_enrolled_again_before_it(
    live: Live, tmp_path: Path
) -> None:
    # ann's purchase imported (the server has not seen ann), then ann erased
    summary, _ = import_rows(live, tmp_path, [
        ["e1", "purchase", "ann", "2026-11-02T10:00:00+00:00", "50"],
    ])  # fmt: skip
    assert (summary["processed"], summary["rejected"]) == (1, 0)
    with live.client() as client:
        with live.db.write() as conn:
            tombstone = erase_member(conn, "shop", "ann", reason="request", at=ERASED_AT).tombstone
        # enrolled again by hand, said to have joined before the erasure
        again = client.post("/v1/members", json={"id": "ann", "joined_at": "2026-11-01T00:00:00Z"})
        assert again.status_code == 201, again.text
        assert again.json()["joined_at"] == "2026-11-01T00:00:00Z"
        before = state(live, client, "ann", tombstone)
        single = client.post("/v1/events", json=purchase("e2", "ann", "2026-11-10T10:00:00Z", "20"))
        at_erasure = client.post(
            "/v1/events", json=purchase("e3", "ann", "2026-11-20T09:00:00Z", "20")
        )
        batch = client.post("/v1/events:batch", json={"events": [
            purchase("e4", "ann", "2026-11-15T10:00:00Z", "20"),
        ]})  # fmt: skip
        assert state(live, client, "ann", tombstone) == before
        assert client.get("/v1/events/e2").status_code == 404
        # after the erasure: the new member's own event
        later = client.post("/v1/events", json=purchase("e5", "ann", "2026-11-21T10:00:00Z", "7"))
        assert (later.status_code, later.json()["points"]) == (201, {"points": 7})
        balances = state(live, client, "ann", tombstone)["balances"]
    for refused in (single, at_erasure):
        assert (refused.status_code, refused.headers["content-type"]) == (422, PROBLEM)
        assert refused.json() == ERASED_PROBLEM
    assert batch.status_code == 200
    assert batch.json() == {"results": [
        {"event_id": "e4", "outcome": "rejected", "problem": ERASED_PROBLEM},
    ]}  # fmt: skip
    assert {m: [(b["currency"], b["available"]) for b in found]
            for m, found in balances.items()} == {"ann": [("points", 7)],
                                                  tombstone: [("points", 50)]}  # fmt: skip

    # the import refuses the same rows with the same code
    with live.client() as client:
        before = state(live, client, "ann", tombstone)
        summary, rejects = import_rows(live, tmp_path, [
            ["e2", "purchase", "ann", "2026-11-10T10:00:00+00:00", "20"],
            ["e5", "purchase", "ann", "2026-11-21T10:00:00+00:00", "7"],
        ])  # fmt: skip
        assert state(live, client, "ann", tombstone) == before
    assert (summary["rows"], summary["processed"], summary["duplicates"],
            summary["rejected_by_code"]) == (2, 0, 1, {"member_erased": 1})  # fmt: skip
    assert rejects == [
        ["row", "event_id", "code", "message"],
        ["2", "e2", "member_erased", "the member 'ann' was erased on 2026-11-20: an event dated "
         "at or before the erasure belongs to the erased history and is not imported (an "
         "event after it enrols the reference as a new member)"],
    ]  # fmt: skip


def test_a_member_erased_through_the_api_enrols_again(live: Live) -> None:
    with live.client() as client:
        made = client.post("/v1/events", json=purchase("e1", "ann", "2026-11-02T10:00:00Z", "50"))
        assert made.status_code == 201
        tombstone = client.delete("/v1/members/ann").json()["tombstone"]
        again = client.post("/v1/members", json={"id": "ann", "joined_at": "2026-11-25T00:00:00Z",
                                                 "segments": ["vip"]})  # fmt: skip
        found = client.get("/v1/members/ann")
        balances = state(live, client, "ann", tombstone)["balances"]
    assert (again.status_code, found.status_code) == (201, 200)
    assert again.json() == found.json() == {
        "id": "ann", "tier": "bronze", "tier_since": "2026-11-25T00:00:00Z", "segments": ["vip"],
        "attributes": {}, "purchases": 0, "joined_at": "2026-11-25T00:00:00Z", "birth_date": None,
    }  # fmt: skip
    assert {m: [(b["currency"], b["available"]) for b in found] for m, found in balances.items()
            } == {"ann": [("points", 0)], tombstone: [("points", 50)]}  # fmt: skip
