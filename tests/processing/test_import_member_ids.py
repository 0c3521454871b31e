"""Member ids in import files: both imports read the ``member`` cell without the spaces
around it (a padded cell is the member the API knows, not a second member with its own
first-purchase bonus), and refuse, row by row, an id the member URLs cannot reach, as
the API does, writing nothing for it."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select

from fidelite.engine.member_id import MEMBER_ID_RULE
from fidelite.ledger import Ledger, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, import_members
from fidelite.processing.tables import events
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import Member
from tests.conftest import TEST_CLOCK

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: first, on: [purchase], when: "member.purchases == 0", fixed: 100}
"""
EVENTS = ["event_id", "type", "member", "at", "amount"]
RULE = f"({MEMBER_ID_RULE})"
BAD = [
    ("CARD/0002", "'CARD/0002' holds '/', which no member URL (/v1/members/<id>) can carry"),
    ("CARD\t1", "'CARD\\t1' holds U+0009 (a control character)"),
    ("..", "'..' is a URL path step, which HTTP clients resolve away"),
]
TOO_LONG = "x" * 129  # PostgreSQL's members.ref holds 128


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _processor(db: Database) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM))


def _refs(db: Database) -> list[str]:
    return [p["member_ref"] for p in _processor(db).list_members(after=None, limit=100)]


def _ledger_members(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(Member)).scalar_one())


def _events(db: Database) -> list[str]:
    with db.read() as conn:
        return sorted(conn.execute(select(events.c.event_id)).scalars())


def _points(db: Database, ref: str) -> int:
    return Ledger(db).balance("shop", ref, "points", as_of=TEST_CLOCK).available


def test_a_padded_member_cell_is_the_same_member_in_both_imports(
    pdb: Database, tmp_path: Path
) -> None:
    members = _csv(tmp_path / "m.csv", ["member", "segments"], [[" padded ", "vip"]])
    assert import_members(_processor(pdb), members, now=TEST_CLOCK).created == 1
    rows = [
        ["pad1", "purchase", " padded ", "2026-11-10T10:00:00+01:00", "5.00"],
        ["pad2", "purchase", "padded", "2026-11-11T10:00:00+01:00", "5.00"],
        ["pad3", "purchase", "padded\t", "2026-11-12T10:00:00+01:00", "5.00"],
        ["pad4", "purchase", "  ", "2026-11-12T10:00:00+01:00", "5.00"],
    ]
    report = import_events(_processor(pdb), _csv(tmp_path / "e.csv", EVENTS, rows))
    assert (report.processed, [(r.row, r.message) for r in report.rejected]) == (
        3, [(5, "member: Field required")])  # fmt: skip
    assert _refs(pdb) == ["padded"]
    padded = _processor(pdb).member_profile("padded")
    assert padded is not None
    assert (padded["segments"], padded["purchases"]) == (["vip"], 3)
    assert _points(pdb, "padded") == 5 + 100 + 5 + 5  # one first-purchase bonus
    assert _events(pdb) == ["pad1", "pad2", "pad3"]
    assert_invariants(pdb, "shop")


def test_an_events_row_naming_an_unreachable_id_is_rejected_and_writes_nothing(
    pdb: Database, tmp_path: Path
) -> None:
    at = "2026-11-10T10:00:00+01:00"
    rows = [["ok1", "purchase", "ann", at, "5.00"]]
    rows += [[f"bad{n}", "purchase", ref, at, "5.00"] for n, (ref, _) in enumerate(BAD)]
    rows += [["long", "purchase", TOO_LONG, at, "5.00"], ["ok2", "purchase", "bob", at, "5.00"]]
    report = import_events(_processor(pdb), _csv(tmp_path / "e.csv", EVENTS, rows))
    assert report.processed == 2
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        *[(3 + n, f"bad{n}", "invalid_row", f"member: {why} {RULE}")
          for n, (_, why) in enumerate(BAD)],
        (6, "long", "invalid_row", "member: String should have at most 128 characters"),
    ]  # fmt: skip
    assert (_refs(pdb), _ledger_members(pdb), _events(pdb)) == (["ann", "bob"], 2, ["ok1", "ok2"])
    assert_invariants(pdb, "shop")


def test_a_members_row_naming_an_unreachable_id_is_rejected_and_enrols_nothing(
    pdb: Database, tmp_path: Path
) -> None:
    rows = [["ann"], *[[ref] for ref, _ in BAD], [TOO_LONG], ["bob"]]
    report = import_members(_processor(pdb), _csv(tmp_path / "m.csv", ["member"], rows),
                            now=TEST_CLOCK)  # fmt: skip
    assert report.created == 2
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        *[(3 + n, ref, "invalid_row", f"member: {why} {RULE}")
          for n, (ref, why) in enumerate(BAD)],
        (6, TOO_LONG, "invalid_row",
         f"member: 129 characters, more than 128 {RULE}"),
    ]  # fmt: skip
    assert (_refs(pdb), _ledger_members(pdb)) == (["ann", "bob"], 2)
