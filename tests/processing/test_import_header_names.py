"""The header of an import file: names are trimmed as cells are; an empty name is told
by its position (a trailing separator's empty name is no column); unknown names are
quoted, so a space shows, and guessed ignoring case."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fidelite.processing.importer import import_events
from fidelite.store import Database
from tests.processing.test_import_duplicate_columns import AT, processor, refused
from tests.processing.test_import_files import points


def test_header_names_are_trimmed(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text(f"event_id , type,\tmember,at,amount\ne1,purchase,ann,{AT},10\n")
    report = import_events(processor(pdb), file)
    assert (report.rows, report.processed, report.rejected) == (1, 1, [])
    assert points(pdb, "ann") == 10


def test_names_alike_once_trimmed_are_one_name_twice(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text(f"event_id,type,member,at,amount, amount \ne2,purchase,ann,{AT},1,2\n")
    assert refused(pdb, file) == (
        f"{file}: the column 'amount' appears 2 times (columns 5 and 6): keep one"
    )


def test_a_trailing_separator_in_the_header_is_no_column(pdb: Database, tmp_path: Path) -> None:
    """``...,amount,``: the empty trailing name is dropped; a row with a value there has
    more cells than the header and is rejected, the others import."""
    file = tmp_path / "events.csv"
    file.write_text(f"event_id,type,member,at,amount,,\ne1,purchase,ann,{AT},10,,\n"
                    f"e2,purchase,ann,{AT},5,x,\ne3,purchase,ann,{AT},1\n")  # fmt: skip
    report = import_events(processor(pdb), file)
    assert (report.rows, report.processed) == (3, 2)
    assert [(r.row, r.key) for r in report.rejected] == [(3, "e2")]
    assert points(pdb, "ann") == 11


def test_an_empty_column_name_is_told_by_its_position(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text(f"event_id,type,, member,at,amount\ne1,purchase,,ann,{AT},10\n")
    assert refused(pdb, file) == (
        f"{file}: an empty column name (column 3): name the column or remove it"
    )


def test_unknown_names_are_quoted_and_guessed_ignoring_case(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text(f" Event_ID ,type,member,at,amount,Colour\ne1,purchase,ann,{AT},10,red\n")
    assert refused(pdb, file) == (
        f"{file}: missing column(s): event_id; unknown column(s): 'Event_ID' (did you mean "
        "'event_id'?), 'Colour'"
    )
    members = tmp_path / "crm.parquet"
    pq.write_table(pa.table({"member": ["ann"], "segments ": ["vip"]}), members)
    assert refused(pdb, members, members=True) == (
        f"{members}: unknown column(s): 'segments ' (did you mean 'segments'?)"
    )
