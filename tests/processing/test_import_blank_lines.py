"""A line of white space only (spaces, TABs), as an editor leaves, is a blank line: no
row, not counted, not rejected, as the docs say of blank lines; it keeps its number."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.processing import EventProcessor
from fidelite.processing.importer import count_rows, import_events, import_members
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import_files import PROGRAM, count
from tests.processing.test_import_members import NOW


@pytest.mark.parametrize("sep", [",", "\t"])
def test_white_space_lines_are_no_rows(pdb: Database, tmp_path: Path, sep: str) -> None:
    def line(*cells: str) -> str:
        return sep.join(cells) + "\n"

    file = tmp_path / "events.csv"
    file.write_text(line("event_id", "type", "member", "at", "amount")
                    + line("e1", "purchase", "ann", "2026-11-02T10:00:00+01:00", "10")
                    + "   \n \t \n"
                    + line("e2", "purchase", "ann", "2026-11-03T10:00:00+01:00", "x")
                    + "  \r\n\t\n", "utf-8")  # fmt: skip
    assert count_rows(file) == 2
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    assert (report.rows, report.processed) == (2, 1)
    assert [(r.row, r.key) for r in report.rejected] == [(5, "e2")]  # lines 3, 4 kept
    assert count(pdb, "processed_events") == 1


def test_white_space_lines_in_a_members_file(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "crm.csv"
    file.write_text("member\nann\n   \nbob\n \t \n", "utf-8")
    report = import_members(EventProcessor(pdb, parse_program(PROGRAM)), file, now=NOW)
    assert (report.rows, report.rejected) == (2, [])
    assert count(pdb, "members") == 2


def test_a_line_of_separators_is_still_a_row(pdb: Database, tmp_path: Path) -> None:
    """``,,,,`` is a row of empty cells (rejected), not a blank line."""
    file = tmp_path / "events.csv"
    file.write_text("event_id,type,member,at,amount\n,,,,\n", "utf-8")
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    assert (report.rows, report.processed, [r.row for r in report.rejected]) == (1, 0, [2])
