"""The importer reads a CSV file's quotes through before its first row: a quote never
closed refuses the file, nothing written, also when called without the CLI's count
(tests/cli/test_import_unclosed_quote.py runs the commands)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.processing import EventProcessor
from fidelite.processing.importer import ImportFileError, import_events, import_members
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.test_import_unclosed_quote import PROGRAM, events_file
from tests.processing.test_import_files import count
from tests.processing.test_import_members import NOW


def test_the_importer_checks_the_quotes_before_the_first_row(pdb: Database, tmp_path: Path) -> None:
    """Called without the CLI's count first, the importer still writes nothing."""
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    file = events_file(tmp_path / "events.csv", 30, bad_row=25)
    with pytest.raises(ImportFileError, match="line 26: badly quoted record"):
        import_events(processor, file, chunk=5)
    members = tmp_path / "crm.csv"
    members.write_text('member\nann\n"bob\ncid\n', encoding="utf-8")
    with pytest.raises(ImportFileError, match="line 3: badly quoted record"):
        import_members(processor, members, chunk=1, now=NOW)
    assert (count(pdb, "processed_events"), count(pdb, "members")) == (0, 0)
