"""Import files separated by ``;`` (Excel's CSV in French and other locales), TAB or
``|`` import as ``,`` files do; a header with none of the separators is named as such."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelite.ledger import Ledger
from fidelite.processing import EventProcessor
from fidelite.processing.importer import RejectedRow, count_rows, import_events, import_members
from fidelite.processing.rows import ImportFileError
from fidelite.processing.tables import events, member_states
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
ITEMS = json.dumps([{"sku": "A", "quantity": 2, "price": "15.00"}])  # holds commas
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def points(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z").available


def recorded(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        query = select(events.c.event_id, events.c.member_ref).order_by(events.c.event_id)
        return [(r.event_id, r.member_ref) for r in conn.execute(query)]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_file_separated_otherwise_imports_exactly(
    pdb: Database, tmp_path: Path, sep: str
) -> None:
    lines = [
        ["event_id", "type", "member", "at", "amount", "items"],
        ["1", "purchase", "a", "2026-01-01T00:00:00Z", "10", ""],
        ["2", "purchase", "b", "2026-01-02T00:00:00Z", "30.00", ITEMS],
    ]
    file = tmp_path / "events.csv"
    file.write_text("\ufeff" + "".join(sep.join(line) + "\r\n" for line in lines), "utf-8")
    assert count_rows(file) == 2
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    assert (report.processed, report.rejected) == (2, [])
    assert recorded(pdb) == [("1", "a"), ("2", "b")]
    assert (points(pdb, "a"), points(pdb, "b")) == (10, 30)


def test_a_row_of_a_semicolon_file_with_more_cells_names_the_separator(
    pdb: Database, tmp_path: Path
) -> None:
    file = tmp_path / "events.csv"
    file.write_text("event_id;type;member;at;amount\n"
                    "1;purchase;a;2026-01-01T00:00:00Z;10\n"
                    "2;purchase;b;2026-01-01T00:00:00Z;10;50\n", "utf-8")  # fmt: skip
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    assert report.processed == 1
    assert report.rejected == [RejectedRow(3, "2", "invalid_row",
                               "(row): 6 cells where the header has 5 "
                               "(a cell holding ';' needs quotes)")]  # fmt: skip
    assert recorded(pdb) == [("1", "a")]


def test_a_semicolon_members_file_imports(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "members.csv"
    file.write_text('member;joined_at;segments\nann;2026-01-05T09:00:00Z;"[""vip""]"\n'
                    "bob;;\n", "utf-8")  # fmt: skip
    report = import_members(EventProcessor(pdb, parse_program(PROGRAM)), file, now=NOW)
    assert (report.created, report.rejected) == (2, [])
    with pdb.read() as conn:
        rows = conn.execute(select(member_states.c.member_ref, member_states.c.segments)
                            .order_by(member_states.c.member_ref)).all()  # fmt: skip
    assert [(r.member_ref, r.segments) for r in rows] == [("ann", ["vip"]), ("bob", [])]


def test_a_header_without_separator_is_named_and_nothing_is_imported(
    pdb: Database, tmp_path: Path
) -> None:
    file = tmp_path / "events.csv"
    file.write_text("event_id type member at amount\n1 purchase a 2026-01-01T00:00:00Z 10\n",
                    "utf-8")  # fmt: skip
    expected = (f"{file}: line 1: the header 'event_id type member at amount' is a single "
                "column: no separator (',', ';', TAB, '|') between the column names; the "
                "file needs the column(s) event_id, type, member, at, "
                "separated by ',' or ';'")  # fmt: skip
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    for read in (lambda: count_rows(file), lambda: import_events(processor, file)):
        with pytest.raises(ImportFileError) as caught:
            read()
        assert str(caught.value) == expected
    assert recorded(pdb) == []
    with pdb.read() as conn:
        assert conn.execute(select(func.count()).select_from(member_states)).scalar_one() == 0
    # A header that is one known column still lists what is missing.
    file.write_text("event_id\n1\n", "utf-8")
    with pytest.raises(ImportFileError) as caught:
        count_rows(file)
    assert str(caught.value) == f"{file}: missing column(s): type, member, at"
