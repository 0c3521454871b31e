"""``fidelite ledger credit-all``: the same credit for every member of a CSV file, each
member once per key (run again with the key, nobody is credited twice), the members the
ledger refuses listed (exit 1), a file wrong for everyone refused before anything is
written. On a SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from fidelite.api.keys import create_key
from fidelite.store import Database
from tests.api.conftest import start_server
from tests.cli.support import as_json, fidelite
from tests.support import snapshot

PROGRAM = """\
id: cafe
name: Cafe
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: after_earning, months: 12, rounding: end_of_month}
"""


def available(db: Database) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(text(
            "SELECT m.ref, a.balance FROM accounts a JOIN members m ON m.id = a.member_id "
            "WHERE a.kind = 'available'")).all()  # fmt: skip
    return {str(r): int(b) for r, b in rows}


def test_credit_all_credits_each_member_once_per_key(db: Database, tmp_path: Path) -> None:
    program = tmp_path / "cafe.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    for m in ("A1", "A2", "A3"):
        fidelite("member", "add", m, "-p", program, db=db.url)
    listed = tmp_path / "outage.csv"
    listed.write_text("member,note\nA1,x\nNOPE,y\n\nA3,z\n", encoding="utf-8")
    args = ("ledger", "credit-all", "25", "-m", listed, "-P", program, "--reason", "outage",
            "--actor", "carol", "-k", "gw-1", "-f", "json")  # fmt: skip
    first = fidelite(*args, db=db.url, ok=False)
    assert first.returncode == 1
    out = as_json(first)
    assert (out["credited"], out["already_credited"], out["refused"]) == (2, 0, 1)
    assert [r["member"] for r in out["results"]] == ["A1", "NOPE", "A3"]
    assert out["results"][1]["error"]["code"] == "unknown_member"
    assert available(db) == {"A1": 25, "A3": 25}
    again = as_json(fidelite(*args, db=db.url, ok=False))
    assert (again["credited"], again["already_credited"], again["refused"]) == (0, 2, 1)
    assert [r.get("transaction_id") for r in again["results"]] == [
        r.get("transaction_id") for r in out["results"]]  # fmt: skip
    assert available(db) == {"A1": 25, "A3": 25}
    # a member listed twice: refused whole, nothing written
    twice = tmp_path / "twice.csv"
    twice.write_text("member\nA2\nA2\n", encoding="utf-8")
    before = snapshot(db)
    proc = fidelite("ledger", "credit-all", "25", "-m", twice, "-P", program, "--reason", "x",
                    "--actor", "carol", "-k", "gw-2", "-f", "json", db=db.url,
                    ok=False)  # fmt: skip
    assert proc.returncode == 1 and "listed more than once: A2" in proc.stdout
    assert snapshot(db) == before
    # no member column: a usage error
    proc = fidelite("ledger", "credit-all", "25", "-m", program, "-P", program, "--reason", "x",
                    "--actor", "carol", "-k", "gw-3", db=db.url, ok=False)  # fmt: skip
    assert proc.returncode == 2
    assert snapshot(db) == before


def test_credit_all_credits_a_segment(db: Database, tmp_path: Path) -> None:
    program = tmp_path / "cafe.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    server, url = start_server(db, program=PROGRAM)
    token = create_key(db, "cafe", "admin")[1]
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            for ref, segments in (("V1", ["vip"]), ("P1", ["club"]), ("V2", ["club", "vip"])):
                made = c.post("/v1/members", json={"id": ref, "segments": segments})
                assert made.status_code == 201, made.text
    finally:
        server.stop()
    out = as_json(fidelite("ledger", "credit-all", "40", "--segment", "vip", "-P", program,
                           "--reason", "vip thanks", "--actor", "ops", "-k", "vip-1", "-f",
                           "json", db=db.url))  # fmt: skip
    assert [r["member"] for r in out["results"]] == ["V1", "V2"]
    assert available(db) == {"V1": 40, "V2": 40}  # P1 (club only) has no account yet
