"""A CSV import file of 0 bytes is said to be empty, not to hold only blank lines."""

from __future__ import annotations

from pathlib import Path

from fidelite.store import Database
from tests.processing.test_import_duplicate_columns import refused


def test_an_empty_file_is_said_to_be_empty(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_bytes(b"")
    assert refused(pdb, file) == f"{file}: the file is empty (0 bytes): no header, no rows"
    members = tmp_path / "crm.csv"
    members.write_bytes(b"")
    assert refused(pdb, members, members=True) == (
        f"{members}: the file is empty (0 bytes): no header, no rows"
    )
    file.write_text("\n \n")  # not empty: blank lines
    assert refused(pdb, file) == f"{file}: no header: the file holds only blank lines"
