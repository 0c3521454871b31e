"""An erased member's account takes no new activity: every write naming its tombstone
(``erased-<member id>``) is refused with ``422 member_erased`` and changes nothing, over
real HTTP (the events fast path, the batch, redemptions and their cancellation,
adjustments single and bulk, tier assignment, coupons issued to the member, a profile
change, a refund naming the tombstone) and through the CLI and the bulk imports. Reads
of the tombstone (balance, ledger history) still answer. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from fidelite.processing.tables import coupons, events
from tests.api.conftest import PROGRAM, Live
from tests.cli.support import fidelite
from tests.processing.test_erased_events import snapshot

PROBLEM = "application/problem+json"


def refusal(tombstone: str) -> str:
    return (f"member {tombstone!r} of program 'shop' was erased: its account takes no more "
            "changes (its balance and history stay readable)")  # fmt: skip


def problem(tombstone: str) -> dict[str, Any]:
    return {"type": "https://fidelite.dev/problems/member_erased", "title": "member erased",
            "status": 422, "detail": refusal(tombstone), "code": "member_erased",
            "field": "member_ref"}  # fmt: skip


def purchase(event_id: str, member: str, when: str, amount: str) -> dict[str, str]:
    return {"id": event_id, "type": "purchase", "member": member, "at": when, "amount": amount}


def erased_bob(client: httpx.Client) -> tuple[str, int]:
    """Bob earns 500 points, redeems 'ten' (an active redemption), and is erased: his
    tombstone and the redemption's id."""
    made = client.post("/v1/events", json=purchase("p1", "bob", "2026-11-02T10:00:00Z", "500"))
    assert made.status_code == 201
    assert client.patch("/v1/members/bob", json={"attributes": {"email": "bob@example.com"}},
                        headers={"Idempotency-Key": "pb"}).status_code == 200  # fmt: skip
    redeemed = client.post("/v1/redemptions", json={"member": "bob", "reward": "ten"},
                           headers={"Idempotency-Key": "r0"})  # fmt: skip
    assert redeemed.status_code == 201
    gone = client.post("/v1/redemptions", json={"member": "bob", "reward": "ten"},
                       headers={"Idempotency-Key": "r9"}).json()["id"]  # fmt: skip
    assert client.post(f"/v1/redemptions/{gone}:cancel", headers={"Idempotency-Key": "c9"},
                       ).status_code == 200  # fmt: skip
    erased = client.delete("/v1/members/bob", headers={"Idempotency-Key": "d1"})
    assert erased.status_code == 200
    return str(erased.json()["tombstone"]), int(redeemed.json()["id"])


def without(snap: dict[str, list[str]], *tables: str) -> dict[str, list[str]]:
    return {name: rows for name, rows in snap.items() if name not in tables}


def test_every_write_naming_an_erased_member_is_refused(live: Live) -> None:
    with live.client() as client:
        tombstone, redemption = erased_bob(client)
        before = without(snapshot(live.db), "api_requests")  # a refusal's stored answer
        writes: list[tuple[str, str, Any, str | None]] = [
            ("POST", "/v1/events", purchase("p2", tombstone, "2026-11-25T10:00:00Z", "10"), None),
            ("POST", "/v1/events", {"id": "f1", "type": "refund", "member": tombstone,
                                    "at": "2026-11-25T10:00:00Z", "amount": "10",
                                    "refund_of": "p1"}, None),
            ("POST", "/v1/redemptions", {"member": tombstone, "reward": "ten"}, "r1"),
            ("POST", f"/v1/redemptions/{redemption}:cancel", None, "c1"),
            ("POST", f"/v1/members/{tombstone}/adjustments",
             {"points": -200, "reason": "take"}, "a1"),
            ("POST", f"/v1/members/{tombstone}/adjustments", {"points": 50, "reason": "gift"},
             "a2"),
            ("PATCH", f"/v1/members/{tombstone}",
             {"attributes": {"email": "bob@example.com"}, "segments": ["vip"]}, "m1"),
            ("POST", f"/v1/members/{tombstone}/tier:assign",
             {"tier": "silver", "until": "2027-06-01T00:00:00Z", "reason": "vip"}, "t1"),
            ("POST", "/v1/coupon-campaigns/welcome/coupons", {"count": 2, "member": tombstone},
             "k1"),
        ]  # fmt: skip
        for method, path, body, key in writes:
            headers = {"Idempotency-Key": key} if key else {}
            answer = client.request(method, path, json=body, headers=headers)
            assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), path
            assert answer.json() == problem(tombstone), path
            assert without(snapshot(live.db), "api_requests") == before, path
        again = client.post(
            f"/v1/redemptions/{redemption + 1}:cancel", headers={"Idempotency-Key": "c10"}
        )  # cancelled before: as it is
        assert (again.status_code, again.json()["status"], again.json()["replayed"]) == (
            200, "cancelled", True)  # fmt: skip
        assert without(snapshot(live.db), "api_requests") == before
        batch = client.post("/v1/events:batch", json={"events": [
            purchase("p3", tombstone, "2026-11-25T10:00:00Z", "10"),
            purchase("p4", "ann", "2026-11-25T10:00:00Z", "10"),
        ]})  # fmt: skip
        assert batch.status_code == 200
        first, second = batch.json()["results"]
        assert (first["outcome"], first["problem"]) == ("rejected", problem(tombstone))
        assert second["outcome"] == "processed"
        bulk = client.post("/v1/adjustments:bulk", headers={"Idempotency-Key": "b1"},
                           json={"members": [tombstone], "points": 5, "reason": "all"})  # fmt: skip
        assert bulk.status_code == 200
        assert bulk.json() == {"credited": 0, "refused": 1, "results": [
            {"member": tombstone, "problem": problem(tombstone)}]}  # fmt: skip
        # the tombstone's books read as before: 500 earned, 10 spent
        balance = client.get(f"/v1/members/{tombstone}/balance").json()["balances"][0]
        assert (balance["available"], balance["debt"]) == (490, 0)
        entries = client.get(f"/v1/members/{tombstone}/ledger").json()["entries"]
        assert [e["kind"] for e in entries] == ["reverse", "spend", "spend", "earn"]
    with live.db.read() as conn:  # the only changes: ann's event and the answers stored
        rows = conn.execute(select(events.c.member_ref, events.c.event_id)
                            .order_by(events.c.event_id))  # fmt: skip
        assert [tuple(r) for r in rows] == [(tombstone, "p1"), ("ann", "p4")]
        assert conn.execute(select(func.count()).select_from(coupons)).scalar_one() == 0


def test_a_refund_of_the_former_reference_still_reaches_the_books(live: Live) -> None:
    """The refund of a purchase made before the erasure, sent with the reference it was
    made under, is real money: it is still taken from the anonymised account."""
    with live.client() as client:
        tombstone, _ = erased_bob(client)
        after = datetime.now(UTC).isoformat()  # after the erasure
        refund = {"id": "f1", "type": "refund", "member": "bob", "at": after, "amount": "100",
                  "refund_of": "p1"}  # fmt: skip
        assert client.post("/v1/events", json=refund).status_code == 201
        balance = client.get(f"/v1/members/{tombstone}/balance").json()["balances"][0]
        assert balance["available"] == 390


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_cli_and_imports_refuse_the_tombstone(live: Live, tmp_path: Path) -> None:
    with live.client() as client:
        tombstone, _ = erased_bob(client)
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    before = snapshot(live.db)
    redeem = fidelite("rewards", "redeem", tombstone, "ten", "--key", "cli-r1", "--program",
                      program, db=live.db.url, ok=False)  # fmt: skip
    assert redeem.returncode != 0
    assert refusal(tombstone) in redeem.stdout + redeem.stderr
    assert snapshot(live.db) == before
    events = write_csv(tmp_path / "events.csv", [
        ["event_id", "type", "member", "at", "amount"],
        ["i1", "purchase", tombstone, "2026-11-25T10:00:00Z", "10"],
    ])  # fmt: skip
    rejects = tmp_path / "rejects.csv"
    done = fidelite("import", "events", events, "--program", program, "--rejects", rejects,
                    "--format", "json", db=live.db.url, ok=False)  # fmt: skip
    assert json.loads(done.stdout)["rejected"] == 1
    with rejects.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][-2:] == ["member_erased", refusal(tombstone)]
    members = write_csv(tmp_path / "members.csv", [
        ["member", "segments", "attributes"], [tombstone, "vip", '{"email": "bob@example.com"}'],
    ])  # fmt: skip
    member_rejects = tmp_path / "member_rejects.csv"
    fidelite("import", "members", members, "--program", program, "--rejects", member_rejects,
             "--format", "json", db=live.db.url, ok=False)  # fmt: skip
    with member_rejects.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][-2:] == ["member_erased", refusal(tombstone)]
    assert without(snapshot(live.db), "import_runs") == without(before, "import_runs")
