"""``fidelite import members`` on a SQLite file and on PostgreSQL: a ``joined_at`` counts
for a new member only, so a future one on an existing member's row is ignored like any
other of its join dates, and the rest of the row (its segments) is applied; for a new
member it is refused and nothing is written. A time before 1970 is bad data whoever the
member: the row is refused."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from fidelite.store import Database
from tests.cli.support import as_json, fidelite

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
JOINED = "2026-03-01T09:00:00+00:00"


def members(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(text(
            "SELECT member_ref, segments, joined_at FROM member_states ORDER BY member_ref"
        )).all()  # fmt: skip
    return [(ref, segments if isinstance(segments, list) else json.loads(segments),
             str(joined)[:19]) for ref, segments, joined in rows]  # fmt: skip


def run(tmp_path: Path, db: Database, body: str) -> dict[str, Any]:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    path = tmp_path / "members.csv"
    path.write_text(body, encoding="utf-8")
    return as_json(fidelite("import", "members", path, "-p", program, "-f", "json", db=db.url))


def rejects(tmp_path: Path) -> list[list[str]]:
    with (tmp_path / "members.csv.rejects.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_a_future_join_is_ignored_for_an_existing_member_and_refused_for_a_new_one(
    tmp_path: Path, db: Database
) -> None:
    fidelite("db", "upgrade", db=db.url)
    report = run(tmp_path, db, f"member,joined_at,segments\nm4,{JOINED},regular\n")
    assert (report["created"], report["rejected"]) == (1, 0)
    assert members(db) == [("m4", ["regular"], "2026-03-01 09:00:00")]

    report = run(tmp_path, db, "member,joined_at,segments\n"
                               "m4,2099-01-01T00:00:00Z,vip\n"
                               "m5,2099-01-01T00:00:00Z,vip\n")  # fmt: skip
    assert (report["rows"], report["created"], report["updated"], report["rejected"]) == (
        2, 0, 1, 1)  # fmt: skip
    # m4 updated (segments changed), its join date kept; m5 not enrolled
    assert members(db) == [("m4", ["vip"], "2026-03-01 09:00:00")]
    ((code, message),) = [(row[2], row[3]) for row in rejects(tmp_path)[1:]]
    assert rejects(tmp_path)[1][:2] == ["3", "m5"]
    assert code == "invalid_row"
    assert message.startswith("joined_at: 2099-01-01T00:00:00+00:00 is in the future: later "
                              "than now (") and message.endswith(
        ") plus the program's tolerance of 5 minute(s) (future_tolerance_minutes)")  # fmt: skip


def test_a_join_before_1970_is_refused_for_an_existing_member_too(
    tmp_path: Path, db: Database
) -> None:
    fidelite("db", "upgrade", db=db.url)
    run(tmp_path, db, f"member,joined_at,segments\nm4,{JOINED},regular\n")
    before = members(db)
    report = run(tmp_path, db, "member,joined_at,segments\nm4,1969-12-31T23:59:59Z,vip\n")
    assert (report["updated"], report["rejected"]) == (0, 1)
    assert rejects(tmp_path)[1:] == [[
        "2", "m4", "invalid_row", "joined_at: 1969-12-31T23:59:59+00:00 is before "
        "1970-01-01T00:00:00Z, the earliest time accepted"]]  # fmt: skip
    assert members(db) == before
