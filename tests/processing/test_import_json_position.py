"""A JSON cell the decoder refuses with a message ending on "at" (a line break kept in a
quoted CRM note, a string never closed) is told where in the cell, and for a control
character how a JSON string writes it (the reason ended "(Invalid control character
at)"). Nothing is written for the row."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from fidelite.processing import EventProcessor
from fidelite.processing.importer import RejectedRow, import_events, import_members
from fidelite.processing.tables import member_states
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
NOW = datetime.fromisoformat("2026-11-01T09:00:00+00:00")
AT = "2026-11-01T10:00:00+00:00"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def count_members(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(member_states)).scalar_one())


def test_a_line_break_in_a_json_string_is_told_where_and_how_to_write_it(
    pdb: Database, tmp_path: Path
) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    crm = write_csv(tmp_path / "crm.csv", ["member", "attributes"], [
        ["q1", '{"note": "line1\nline2"}'],
        ["q2", '{"a": 1,\n "b": "x\ty"}'],
        ["q3", '{"note": "open'],
        ["q4", '{"ok": "line1\\nline2"}'],
    ])  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert report.rejected == [
        RejectedRow(2, "q1", "invalid_row", "attributes: invalid JSON (Invalid control "
                    "character at line 1, column 16 of the cell: a line break inside a JSON "
                    "string must be written \\n)"),
        RejectedRow(3, "q2", "invalid_row", "attributes: invalid JSON (Invalid control "
                    "character at line 2, column 9 of the cell: a tab inside a JSON string "
                    "must be written \\t)"),
        RejectedRow(4, "q3", "invalid_row", "attributes: invalid JSON (Unterminated string "
                    "starting at line 1, column 10 of the cell)"),
    ]  # fmt: skip
    assert report.created == 1 and count_members(pdb) == 1
    profile = processor.member_profile("q4")
    assert profile is not None and profile["attributes"] == {"ok": "line1\nline2"}
    assert processor.member_profile("q1") is None


def test_an_events_json_cell_is_told_the_same(pdb: Database, tmp_path: Path) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    sales = write_csv(tmp_path / "sales.csv", ["event_id", "type", "member", "at", "amount",
                                               "attributes"], [
        ["s1", "purchase", "m1", AT, "10", '{"note": "a\x01b"}'],
    ])  # fmt: skip
    report = import_events(processor, sales)
    assert report.rejected == [
        RejectedRow(2, "s1", "invalid_row", "attributes: invalid JSON (Invalid control "
                    "character at line 1, column 12 of the cell: the control character "
                    "U+0001 inside a JSON string must be written \\u0001)"),
    ]  # fmt: skip
    assert (report.processed, count_members(pdb)) == (0, 0)
