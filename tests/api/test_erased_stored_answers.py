"""Erasure anonymises the answers stored for retries, over real HTTP and the CLI.

Every answer the API keeps under an ``Idempotency-Key`` (``api_requests``), and every
answer a ``--key`` of the CLI keeps, that names the erased member is rewritten in the
erasure's transaction: the reference becomes the tombstone, profile data (attributes,
segments, birth date) goes. Afterwards no row of any table holds the reference or the
personal data, a retry under a stored key replays the anonymised answer, and the books
are as they were. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import inspect, select, text

from fidelite.api.idempotency import Outcome, run_once
from fidelite.ledger import check_invariants, unknown_member
from fidelite.privacy import erase_member
from fidelite.store import Database
from tests.api.conftest import PROGRAM, Live
from tests.cli.support import fidelite

REF = "card-bob-4711"
EMAIL = "bob.martin@example.com"
NAME = "Bob Martin"
SEGMENT = "newsletter"
BIRTH = "1988-03-09"
PERSONAL = (REF, EMAIL, NAME, BIRTH)
AT = "2026-11-02T10:00:00Z"


def every_text(db: Database) -> dict[str, list[str]]:
    """Every value of every column of every table, as text, by table (to search for
    personal data whatever the table or column)."""
    with db.read() as conn:
        tables = inspect(conn).get_table_names()
        return {
            table: [str(value) for row in conn.execute(text(f'SELECT * FROM "{table}"'))
                    for value in row]
            for table in sorted(tables)
        }  # fmt: skip


def holding(db: Database, *needles: str) -> dict[str, list[str]]:
    """The values (by table) that contain one of ``needles``."""
    found: dict[str, list[str]] = {}
    for table, values in every_text(db).items():
        hits = [v for v in values if any(n in v for n in needles)]
        if hits:
            found[table] = hits
    return found


def post(client: httpx.Client, path: str, body: Any, key: str) -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": key})


def calls(live: Live, client: httpx.Client, tmp_path: Path) -> dict[str, tuple[str, Any]]:
    """The member's life through every keyed route (and the CLI); the calls to retry
    after the erasure, by key."""
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    profile = {"attributes": {"email": EMAIL, "name": NAME}, "segments": [SEGMENT],
               "birth_date": BIRTH}  # fmt: skip
    done = {
        "m1": ("/v1/members", {"id": REF, **profile, "joined_at": AT}),
        "k1": ("/v1/events", {"id": "s1", "type": "signup", "member": REF, "at": AT}),
        "k2": ("/v1/events", {"id": "p1", "type": "purchase", "member": REF, "at": AT,
                              "amount": "250.00"}),
        "b1": ("/v1/events:batch", {"events": [{"id": "p2", "type": "purchase", "member": REF,
                                                "at": AT, "amount": "5.00"}]}),
        "red-1": ("/v1/redemptions", {"member": REF, "reward": "ten"}),
        "red-2": ("/v1/redemptions", {"member": REF, "reward": "mug"}),
        "red-3": ("/v1/redemptions", {"member": REF, "reward": "mug"}),  # out of stock
        "adj-1": (f"/v1/members/{REF}/adjustments", {"points": 7, "reason": "goodwill"}),
        "bulk-1": ("/v1/adjustments:bulk", {"members": [REF, "ann"], "points": 3,
                                            "reason": "outage"}),
        "t1": (f"/v1/members/{REF}/tier:assign", {"tier": "silver",
                                                   "until": "2027-01-01T00:00:00Z",
                                                   "reason": "complaint"}),
        "c1": ("/v1/coupon-campaigns/welcome/coupons", {"count": 1, "member": REF}),
    }  # fmt: skip
    assert post(client, "/v1/members", {"id": "ann"}, "m0").status_code == 201
    for key, (path, body) in done.items():
        answer = post(client, path, body, key)
        assert answer.status_code < 500, answer.text
    patched = client.patch(f"/v1/members/{REF}", json=profile, headers={"Idempotency-Key": "p1"})
    assert patched.status_code == 200, patched.text
    fidelite("rewards", "redeem", REF, "ten", "--key", "desk-1", "--program", program,
             db=live.db.url)  # fmt: skip
    fidelite("tier", "assign", REF, "silver", "--until", "2027-02-01", "--reason", "desk",
             "--key", "desk-2", "--program", program, db=live.db.url)  # fmt: skip
    fidelite("ledger", "adjust", REF, "5", "--reason", "desk", "--actor", "ops", "--key",
             "desk-3", "--program", "shop", db=live.db.url)  # fmt: skip
    return done


def test_erasure_leaves_no_reference_in_any_stored_answer(live: Live, tmp_path: Path) -> None:
    client = live.client()
    done = calls(live, client, tmp_path)
    first = {key: post(client, path, body, key).json() for key, (path, body) in done.items()}
    assert first["red-1"]["member"] == REF
    before = holding(live.db, *PERSONAL)
    assert "api_requests" in before  # stored answers named the member
    balance = client.get(f"/v1/members/{REF}/balance").json()["balances"]

    erased = client.delete(f"/v1/members/{REF}", headers={"Idempotency-Key": "del-1"})
    assert erased.status_code == 200, erased.text
    tombstone = erased.json()["tombstone"]
    assert tombstone == "erased-2"

    leaks = holding(live.db, *PERSONAL, SEGMENT)
    assert leaks == {}, json.dumps(leaks, indent=1)
    assert check_invariants(live.db, "shop") == []
    after = client.get(f"/v1/members/{tombstone}/balance").json()["balances"]
    assert [{**b, "as_of": None} for b in after] == [
        {**b, "as_of": None, "member_ref": tombstone} for b in balance
    ]  # the books did not move

    replay = post(client, "/v1/redemptions", {"member": REF, "reward": "ten"}, "red-1")
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == {**first["red-1"], "member": tombstone}
    replayed = set()
    for key, (path, body) in done.items():  # every retry replays, anonymised...
        again = post(client, path, body, key)
        if again.headers.get("Idempotent-Replayed") == "true":
            replayed.add(key)
            assert REF not in again.text and EMAIL not in again.text, (key, again.text)
        else:  # ...but one naming the member in its path: no such member any more
            assert again.json()["code"] == "unknown_member", (key, again.text)
            assert tombstone not in again.text
    assert replayed >= {"m1", "k1", "k2", "b1", "red-1", "bulk-1", "c1"}
    member = post(client, "/v1/members", {"id": REF, "attributes": {"email": EMAIL, "name": NAME},
                                          "segments": [SEGMENT], "birth_date": BIRTH,
                                          "joined_at": AT}, "m1")  # fmt: skip
    assert member.json()["attributes"] == {} and member.json()["id"] == tombstone
    assert holding(live.db, *PERSONAL, SEGMENT) == {}  # the replays stored nothing new
    with live.db.read() as conn:
        routes = set(conn.execute(text("SELECT route FROM api_requests")).scalars())
    assert f"POST /v1/members/{tombstone}/adjustments" in routes


def test_cli_stored_answers_replay_under_the_tombstone(live: Live, tmp_path: Path) -> None:
    client = live.client()
    calls(live, client, tmp_path)
    program = tmp_path / "shop.yaml"
    first = json.loads(fidelite("rewards", "redeem", REF, "ten", "--key", "desk-1", "--program",
                                program, "--format", "json", db=live.db.url).stdout)  # fmt: skip
    assert client.delete(f"/v1/members/{REF}").status_code == 200
    assert holding(live.db, *PERSONAL, SEGMENT) == {}
    with live.db.read() as conn:
        keys = conn.execute(select(text("key")).select_from(text("redemptions"))).scalars()
        assert "cli:desk-1" in set(keys)
    again = fidelite("rewards", "show", str(first["id"]), "--program", program, "--format",
                     "json", db=live.db.url)  # fmt: skip
    assert json.loads(again.stdout)["member"] == "erased-2"
    assert check_invariants(live.db, "shop") == []


def test_an_answer_stored_just_after_the_erasure_is_anonymised(live: Live) -> None:
    """The erasure commits between a request's change and the storing of its answer
    (which the erasure could not find): the answer is anonymised as it is stored, while
    another member's answer is stored as it was."""
    client = live.client()
    for n, ref in enumerate((REF, "ann")):
        assert post(client, "/v1/members", {"id": ref, "joined_at": AT}, f"m-{n}").is_success

    def answered_then_erased(ref: str) -> Outcome:
        with live.db.write() as conn:
            erase_member(conn, "shop", REF)
        return 201, {"member": ref, "profile": {"id": ref, "attributes": {"email": EMAIL}}}

    for ref in (REF, "ann"):
        run_once(live.db, "shop", f"race-{ref[:3]}", "POST /v1/redemptions", {"member": ref},
                 lambda ref=ref: answered_then_erased(ref))  # type: ignore[misc]  # fmt: skip
    with live.db.read() as conn:
        stored = dict(conn.execute(text("SELECT idem_key, body FROM api_requests "
                                        "WHERE idem_key LIKE 'race-%'")).all())  # fmt: skip
    bodies = {k: v if isinstance(v, dict) else json.loads(v) for k, v in stored.items()}
    assert bodies == {
        "race-car": {"member": "erased-1", "profile": {"id": "erased-1", "attributes": {}}},
        "race-ann": {"member": "ann", "profile": {"id": "ann", "attributes": {"email": EMAIL}}},
    }
    assert holding(live.db, REF) == {}


def test_a_refusal_stored_just_after_the_erasure_names_only_the_tombstone(live: Live) -> None:
    """A request claimed before the erasure and refused after it (``unknown_member``,
    naming the reference only in its ``detail``): the erasure already rewrote the claimed
    route to the tombstone, so the refusal is stored naming the tombstone too, not linking
    the two; another member's refusal is stored as it was."""
    client = live.client()
    for n, ref in enumerate((REF, "ann")):
        assert post(client, "/v1/members", {"id": ref, "joined_at": AT}, f"m-{n}").is_success

    def refused_after_erasure(ref: str) -> Outcome:
        if ref == REF:
            with live.db.write() as conn:
                erase_member(conn, "shop", REF)
        raise unknown_member("shop", ref)  # what the ledger answers for an unknown member

    for ref in (REF, "ann"):
        run_once(live.db, "shop", f"late-{ref[:3]}", f"POST /v1/members/{ref}/adjustments",
                 {"points": 5, "reason": "x"},
                 lambda ref=ref: refused_after_erasure(ref))  # type: ignore[misc]  # fmt: skip
    with live.db.read() as conn:
        rows = conn.execute(text("SELECT idem_key, route, status_code, body FROM api_requests "
                                 "WHERE idem_key LIKE 'late-%'")).all()  # fmt: skip
    stored = {k: (r, s, b if isinstance(b, dict) else json.loads(b)) for k, r, s, b in rows}
    problem = {"type": "https://fidelite.dev/problems/unknown_member", "title": "unknown member",
               "status": 404, "code": "unknown_member", "field": "member_ref"}  # fmt: skip
    assert stored == {
        "late-car": ("POST /v1/members/erased-1/adjustments", 404,
                     {**problem, "detail": "no member 'erased-1' in program 'shop'"}),
        "late-ann": ("POST /v1/members/ann/adjustments", 404,
                     {**problem, "detail": "no member 'ann' in program 'shop'"}),
    }  # fmt: skip
    assert holding(live.db, REF) == {}
