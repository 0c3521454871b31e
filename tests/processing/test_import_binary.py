"""An import file that is no text (a workbook, a Parquet file named .csv) is named for
what it is, as analytics names it, not called "UTF-16 text"; nothing is imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from fidelite.processing.importer import ImportFileError, import_events, import_members
from fidelite.store import Database
from tests.analytics.test_input_binary import PARQUET, XLSX, _parquet, _xlsx
from tests.processing.test_import_files import processor
from tests.processing.test_import_members import NOW


def _count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_a_members_import_names_a_workbook(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "crm.xlsx"
    _xlsx(file)
    with pytest.raises(ImportFileError) as error:
        import_members(processor(pdb), file, now=NOW)
    assert str(error.value) == f"{file}: {XLSX}"
    assert _count(pdb, "member_states") == 0


def test_an_events_import_names_a_parquet_file_named_csv(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    _parquet(file)
    with pytest.raises(ImportFileError) as error:
        import_events(processor(pdb), file)
    assert str(error.value) == f"{file}: {PARQUET}"
    assert (_count(pdb, "processed_events"), _count(pdb, "member_states")) == (0, 0)
