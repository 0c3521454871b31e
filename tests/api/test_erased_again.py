"""A reference erased, then enrolled again by someone else: nothing stored links the
reference to the first person's tombstone, and the new person's export holds nothing
of the first. A repeated erasure through the API (a new Idempotency-Key) stores no
answer; the command line's enrolment under ``--key`` is erased with the member, and
the export lists it while the member is there. Over real HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import fidelite.api.idempotency as idempotency
import fidelite.api.routes.members as members_route
from fidelite.store import Database
from tests.api.conftest import PROGRAM, Live
from tests.cli.support import fidelite

REF = "fred-card"


def stored(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT idem_key, route, state FROM api_requests ORDER BY idem_key")
            )
        ]


def records(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        return [
            (key, json.loads(r) if isinstance(r, str) else r)
            for key, r in conn.execute(
                text("SELECT key, result FROM idempotency_records ORDER BY key")
            )
        ]


def test_a_repeated_erasure_stores_no_answer_naming_the_reference(live: Live) -> None:
    client = live.client()
    enrol = {"id": REF, "attributes": {"email": "fred@example.com"}}
    assert (
        client.post("/v1/members", json=enrol, headers={"Idempotency-Key": "f-enrol"}).status_code
        == 201
    )
    first = client.delete(f"/v1/members/{REF}", headers={"Idempotency-Key": "f-del-1"})
    assert first.json()["tombstone"] == "erased-1" and first.json()["replayed"] is False
    again = client.delete(f"/v1/members/{REF}", headers={"Idempotency-Key": "f-del-2"})
    assert again.status_code == 200
    assert (again.json()["tombstone"], again.json()["replayed"]) == ("erased-1", True)
    assert stored(live.db) == [
        ("f-del-1", "DELETE /v1/members/erased-1", "done"),
        ("f-enrol", "POST /v1/members", "done"),
    ]
    retried = client.delete(f"/v1/members/{REF}", headers={"Idempotency-Key": "f-del-2"})
    assert retried.json() == again.json()  # answered again, the same; still not stored
    assert [k for k, *_ in stored(live.db)] == ["f-del-1", "f-enrol"]
    new = {"id": REF, "attributes": {"email": "other.fred@example.com"}}
    assert (
        client.post("/v1/members", json=new, headers={"Idempotency-Key": "f-new"}).status_code
        == 201
    )
    export = client.get(f"/v1/members/{REF}/export").json()
    assert [a["idem_key"] for a in export["stored_answers"]] == ["f-new"]
    assert "erased-1" not in json.dumps(export)
    assert "fred@example.com" not in json.dumps(export).replace("other.fred@", "")


def test_cli_enrolment_under_a_key_is_erased_with_the_member(live: Live, tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    add = ("member", "add", REF, "--program", program, "--key", "crm-1", "--format", "json")
    first = json.loads(fidelite(*add, db=live.db.url).stdout)
    assert (first["member_id"], first["ref"], first["replayed"]) == (1, REF, False)
    export = json.loads(
        fidelite("member", "export", REF, "--program", "shop", db=live.db.url).stdout
    )
    assert [(r["key"], r["result"]) for r in export["idempotency_records"]] == [
        ("crm-1", {"member_id": 1})
    ]
    assert records(live.db) == [("crm-1", {"member_id": 1})]
    fidelite("member", "erase", REF, "--program", "shop", "--yes", db=live.db.url)
    assert records(live.db) == []
    tomb = json.loads(
        fidelite("member", "export", "erased-1", "--program", "shop", db=live.db.url).stdout
    )
    assert tomb["idempotency_records"] == []
    again = fidelite(*add, db=live.db.url)  # the CRM's retry, or the card given to another
    assert "erased" not in again.stdout
    second = json.loads(again.stdout)
    assert (second["member_id"], second["ref"], second["status"], second["replayed"]) == (
        2, REF, "active", False,
    )  # fmt: skip
    assert records(live.db) == [("crm-1", {"member_id": 2})]
    with live.db.read() as conn:
        members = conn.execute(text("SELECT id, ref, status FROM members ORDER BY id")).all()
    assert [tuple(m) for m in members] == [(1, "erased-1", "erased"), (2, REF, "active")]


def test_cli_key_left_by_an_older_erasure_enrols_anew(live: Live, tmp_path: Path) -> None:
    """A database erased by an earlier version kept the ``--key`` record naming the
    erased member: a re-run neither shows the tombstone nor half-enrols; the record is
    taken as the erasure now takes it (both with the program file and its id only)."""
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    for n, (where, ref) in enumerate([(program, REF), ("shop", "ann-card")], start=1):
        add = ("member", "add", ref, "--program", where, "--key", f"crm-{n}", "--format", "json")
        fidelite(*add, db=live.db.url)
        with live.db.write() as conn:  # the record as the earlier erasure left it
            kept = conn.execute(
                text("SELECT key, request_hash, result, created_at FROM idempotency_records "
                     "WHERE key = :k"), {"k": f"crm-{n}"}
            ).one()  # fmt: skip
        fidelite("member", "erase", ref, "--program", "shop", "--yes", db=live.db.url)
        with live.db.write() as conn:
            conn.execute(text("DELETE FROM idempotency_records WHERE key = :k"), {"k": kept[0]})
            conn.execute(
                text("INSERT INTO idempotency_records (program_id, key, request_hash, result, "
                     "created_at) VALUES ('shop', :k, :h, :r, :c)"),
                {"k": kept[0], "h": kept[1], "c": kept[3],
                 "r": kept[2] if isinstance(kept[2], str) else json.dumps(kept[2])},
            )  # fmt: skip
        again = fidelite(*add, db=live.db.url)
        assert "erased" not in again.stdout
        info = json.loads(again.stdout)
        assert (info["ref"], info["status"], info["replayed"]) == (ref, "active", False)
    assert records(live.db) == [("crm-1", {"member_id": 2}), ("crm-2", {"member_id": 4})]
    with live.db.read() as conn:
        members = conn.execute(text("SELECT id, ref, status FROM members ORDER BY id")).all()
    assert [tuple(m) for m in members] == [
        (1, "erased-1", "erased"), (2, REF, "active"), (3, "erased-3", "erased"),
        (4, "ann-card", "active"),
    ]  # fmt: skip


def test_the_tombstones_history_lists_its_event_ids_as_the_docs_say(live: Live) -> None:
    """docs/webhooks.md says what holds: no answer about an event id shows the
    tombstone, while the anonymised account's own ledger, timeline and tier answers
    list the event ids it holds."""
    client = live.client()
    assert (
        client.post("/v1/members", json={"id": REF}, headers={"Idempotency-Key": "e1"}).status_code
        == 201
    )
    event = {"id": "inv-77", "type": "purchase", "member": REF, "at": "2026-11-02T10:00:00Z",
             "amount": "250.00"}  # fmt: skip
    assert (
        client.post("/v1/events", json=event, headers={"Idempotency-Key": "e2"}).status_code < 300
    )
    assert client.delete(f"/v1/members/{REF}").json()["tombstone"] == "erased-1"
    assert client.get("/v1/events/inv-77").json()["member"] is None
    ledger = client.get("/v1/members/erased-1/ledger").json()
    assert [e["source"] for e in ledger["entries"]] == ["inv-77"]
    timeline = client.get("/v1/members/erased-1/timeline").json()["timeline"]
    assert {i.get("source") for i in timeline if i["kind"].startswith("points.")} == {"inv-77"}
    docs = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    assert "no answer shows the tombstone of a recorded event" not in " ".join(docs.split())
    assert "`GET /v1/members/erased-1/ledger` and `/timeline` give each" in docs


def test_a_retry_racing_a_repeated_erasure_leaves_no_answer_stored(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry (same key) arrives just as the repeated erasure has run and its key's
    claim is about to be dealt with (an earlier version's window: the claim freed by key
    in the erasure's transaction, then the answer stored by key onto the retry's new
    claim, which the retry then failed to free). The first is answered; the retry finds
    the key still in flight (409); no answer is ever stored under the key, and a later
    retry is answered again, the same."""
    client = live.client()
    enrol = client.post("/v1/members", json={"id": REF}, headers={"Idempotency-Key": "e"})
    assert enrol.status_code == 201
    erased = client.delete(f"/v1/members/{REF}", headers={"Idempotency-Key": "k1"})
    assert erased.json()["replayed"] is False
    calls: list[int] = []
    retry: list[Any] = []
    senders: list[threading.Thread] = []
    retry_running = threading.Event()
    go_on = threading.Event()
    real_erase = members_route.erase_member

    def erase_holding_the_retry(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the retry's (the first's was call 1): it claimed the key
            retry_running.set()
            go_on.wait(10)
        return real_erase(*args, **kwargs)

    def send_retry() -> None:
        retry.append(live.client().delete(f"/v1/members/{REF}",
                                          headers={"Idempotency-Key": "k2"}))  # fmt: skip
        retry_running.set()

    def launch_retry() -> None:
        """Once: the retry is sent and claims the key and runs (held), or is answered."""
        if senders:
            return
        senders.append(threading.Thread(target=send_retry))
        senders[0].start()
        retry_running.wait(10)

    def retry_first(real: Any) -> Any:
        """``real`` (after the first's erasure committed) once the retry is launched."""

        def step(*args: Any) -> Any:
            launch_retry()
            return real(*args)

        return step

    def retry_first_then_go_on(real: Any) -> Any:
        """``real`` (storing or freeing the first's claim) once the retry is launched;
        then the retry goes on."""

        def step(*args: Any) -> Any:
            launch_retry()
            try:
                return real(*args)
            finally:
                go_on.set()

        return step

    monkeypatch.setattr(members_route, "erase_member", erase_holding_the_retry)
    monkeypatch.setattr(idempotency, "kept", retry_first(idempotency.kept))
    for step in ("_store_in", "_release"):
        monkeypatch.setattr(idempotency, step, retry_first_then_go_on(getattr(idempotency, step)))
    first = client.delete(f"/v1/members/{REF}", headers={"Idempotency-Key": "k2"})
    assert (first.status_code, first.json()["tombstone"], first.json()["replayed"]) == (
        200, "erased-1", True,
    )  # fmt: skip
    senders[0].join(20)
    assert stored(live.db) == [
        ("e", "POST /v1/members", "done"), ("k1", "DELETE /v1/members/erased-1", "done"),
    ]  # fmt: skip
    (second,) = retry
    assert (second.status_code, second.json()["code"]) == (409, "request_in_flight")
    again = client.delete(f"/v1/members/{REF}", headers={"Idempotency-Key": "k2"})
    assert (again.status_code, again.json()["replayed"]) == (200, True)
    assert "Idempotent-Replayed" not in again.headers
    assert [k for k, *_ in stored(live.db)] == ["e", "k1"]
