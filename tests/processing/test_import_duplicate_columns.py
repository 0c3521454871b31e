"""A column named twice in an import file's header (``amount,amount``) refuses the file,
naming the column and its positions: the last one used to win silently."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fidelite.processing import EventProcessor
from fidelite.processing.importer import (
    ImportFileError,
    count_rows,
    import_events,
    import_members,
)
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import_files import PROGRAM, count
from tests.processing.test_import_members import NOW

AT = "2026-11-02T10:00:00+01:00"


def processor(db: Database) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM))


def refused(db: Database, file: Path, members: bool = False) -> str:
    """The error refusing ``file`` (by the count and by the import), nothing written."""
    with pytest.raises(ImportFileError) as counted:
        count_rows(file)
    with pytest.raises(ImportFileError) as imported:
        if members:
            import_members(processor(db), file, now=NOW)
        else:
            import_events(processor(db), file)
    assert (count(db, "processed_events"), count(db, "members")) == (0, 0)
    if not members:
        assert str(counted.value) == str(imported.value)
    return str(imported.value)


def test_a_column_named_twice_is_refused(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text(f"event_id,type,member,at,amount,amount\ne1,purchase,ann,{AT},10,20\n")
    assert refused(pdb, file) == (
        f"{file}: the column 'amount' appears 2 times (columns 5 and 6): keep one"
    )
    file.write_text(
        f"member,event_id,type,member,at,member,amount\nann,e1,purchase,ann,{AT},ann,1\n"
    )
    assert refused(pdb, file) == (
        f"{file}: the column 'member' appears 3 times (columns 1, 4 and 6): keep one"
    )
    members = tmp_path / "crm.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])],
                                        names=["member", "member"]), members)  # fmt: skip
    assert refused(pdb, members, members=True) == (
        f"{members}: the column 'member' appears 2 times (columns 1 and 2): keep one"
    )
