"""Members import: enrol or update, idempotent, bad rows reported by row number."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import ImportFileError, import_members
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  metric: spend
  levels:
    - {id: basic, name: Basic, threshold: 0}
    - {id: gold, name: Gold, threshold: 500}
"""
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HEADER = ["member", "joined_at", "birth_date", "segments", "attributes"]
GOOD = [
    ["ann", "2024-03-01T10:00:00+01:00", "1990-05-17", "vip;newsletter", '{"city": "Lyon"}'],
    ["bob", "", "", '["staff"]', ""],
    ["cid", "", "", "", ""],
]


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def processor(db: Database) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM))


def profile(db: Database, ref: str) -> dict[str, Any] | None:
    return processor(db).member_profile(ref)


def test_import_enrols_then_changes_nothing_on_rerun(pdb: Database, tmp_path: Path) -> None:
    file = write(tmp_path / "members.csv", GOOD)
    first = import_members(processor(pdb), file, now=NOW)
    assert first.summary() == {
        "rows": 3, "created": 3, "updated": 0, "unchanged": 0, "rejected": 0,
        "rejected_by_code": {},
    }  # fmt: skip
    ann = profile(pdb, "ann")
    assert ann is not None
    assert (ann["segments"], ann["attributes"], ann["birth_date"], ann["tier"]) == (
        ["newsletter", "vip"],
        {"city": "Lyon"},
        date(1990, 5, 17),
        "basic",
    )
    assert ann["joined_at"].replace(tzinfo=UTC) == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    cid = profile(pdb, "cid")
    assert cid is not None and cid["joined_at"].replace(tzinfo=UTC) == NOW
    assert cid["segments"] == [] and cid["attributes"] == {}
    again = import_members(processor(pdb), file, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert profile(pdb, "ann") == ann and profile(pdb, "cid") == cid
    assert_invariants(pdb, "shop")


def test_import_updates_given_fields_and_keeps_the_join_date(pdb: Database, tmp_path: Path) -> None:
    import_members(processor(pdb), write(tmp_path / "a.csv", GOOD), now=NOW)
    before = profile(pdb, "ann")
    assert before is not None
    changes = [["ann", "2025-01-01T00:00:00+00:00", "", "vip", ""], ["bob", "", "", "", ""]]
    report = import_members(processor(pdb), write(tmp_path / "b.csv", changes), now=NOW)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    after = profile(pdb, "ann")
    assert after is not None
    assert after["segments"] == ["vip"]
    # fields left empty keep their value; the join date of an existing member stays
    assert (after["attributes"], after["birth_date"], after["joined_at"]) == (
        before["attributes"],
        before["birth_date"],
        before["joined_at"],
    )


NAMES = (
    "(lower-case letters, digits and _, starting with a letter, at most 64 characters, "
    "as rules write them)"
)


def test_bad_rows_are_reported_and_change_nothing(pdb: Database, tmp_path: Path) -> None:
    rows = [
        GOOD[0],
        ["", "", "", "", ""],
        ["dan", "2024-03-01T10:00:00", "", "", ""],
        ["eve", "", "1990-13-01", "", ""],
        ["fay", "", "", "a;;b", ""],
        ["gus", "", "", "", "[1, 2]"],
        ["hal", "", "", '["x"', ""],
        ["ida", "", "", "regulars;VIP", ""],
        ["jon", "", "", '["high-value"]', ""],
        GOOD[2],
    ]
    report = import_members(processor(pdb), write(tmp_path / "m.csv", rows), now=NOW, chunk=3)
    assert (report.created, report.rows) == (2, 10)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "", "invalid_row", "member: missing member reference"),
        (4, "dan", "invalid_row",
         "joined_at: needs a UTC offset (e.g. +00:00): '2024-03-01T10:00:00'"),
        (5, "eve", "invalid_row",
         "birth_date: '1990-13-01' is not a day of the calendar (months are 01 to 12)"),
        (6, "fay", "invalid_row", "segments: empty segment name in 'a;;b'"),
        (7, "gus", "invalid_row", "attributes: must be a JSON object"),
        (8, "hal", "invalid_row", "segments: invalid JSON (Expecting ',' delimiter)"),
        (9, "ida", "invalid_row", f"segments: 'VIP' is not a segment name {NAMES}"),
        (10, "jon", "invalid_row", f"segments: 'high-value' is not a segment name {NAMES}"),
    ]  # fmt: skip
    for ref in ("dan", "eve", "fay", "gus", "hal", "ida", "jon"):
        assert profile(pdb, ref) is None
    assert profile(pdb, "ann") is not None and profile(pdb, "cid") is not None


def test_a_row_lists_every_problem_with_the_cells_as_written(pdb: Database, tmp_path: Path) -> None:
    """Every problem of a row in one reject line, in column order, joined by '; ' (the
    first alone sent the user back for each of the others), and a date without offset
    echoed as the file has it, not as its midnight."""
    rows = [
        ["kim", "2026-01-01", "1990-13-01", "vip;VIP", "[1]"],
        ["", "2026-01-01T10:00:00", "", "a;;b", ""],
        GOOD[2],
    ]
    report = import_members(processor(pdb), write(tmp_path / "m.csv", rows), now=NOW)
    assert (report.created, report.rows) == (1, 3)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (2, "kim", "invalid_row",
         "joined_at: needs a UTC offset (e.g. +00:00): '2026-01-01'; "
         "birth_date: '1990-13-01' is not a day of the calendar (months are 01 to 12); "
         f"segments: 'VIP' is not a segment name {NAMES}; "
         "attributes: must be a JSON object"),
        (3, "", "invalid_row",
         "member: missing member reference; "
         "joined_at: needs a UTC offset (e.g. +00:00): '2026-01-01T10:00:00'; "
         "segments: empty segment name in 'a;;b'"),
    ]  # fmt: skip
    assert profile(pdb, "kim") is None and profile(pdb, "cid") is not None


def test_unknown_or_missing_columns_refuse_the_file(pdb: Database, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="missing column\\(s\\): member"):
        import_members(processor(pdb), write(tmp_path / "a.csv", [["x"]], ["ref"]), now=NOW)
    with pytest.raises(ImportFileError, match="unknown column\\(s\\): 'tier'"):
        import_members(
            processor(pdb), write(tmp_path / "b.csv", [["x", "gold"]], ["member", "tier"]), now=NOW
        )
    assert profile(pdb, "x") is None


def test_parquet_members_file(pdb: Database, tmp_path: Path) -> None:
    table = pa.table(
        {
            "member": ["ann", "bob"],
            "joined_at": [datetime(2024, 1, 2, tzinfo=UTC), None],
            "birth_date": [date(1990, 5, 17), None],
            "segments": ["vip", None],
        }
    )
    pq.write_table(table, tmp_path / "members.parquet")
    report = import_members(processor(pdb), tmp_path / "members.parquet", now=NOW)
    assert (report.created, len(report.rejected)) == (2, 0)
    ann = profile(pdb, "ann")
    assert ann is not None and (ann["birth_date"], ann["segments"]) == (date(1990, 5, 17), ["vip"])


def test_members_imported_then_earn_through_events(pdb: Database, tmp_path: Path) -> None:
    """An imported member is the same member the engine later credits."""
    from fidelite.engine import Event
    from fidelite.ledger import Ledger

    import_members(processor(pdb), write(tmp_path / "m.csv", GOOD[:1]), now=NOW)
    event = Event.model_validate(
        {"id": "p1", "type": "purchase", "member": "ann", "at": "2026-11-23T10:00:00+00:00",
         "amount": "42"}
    )  # fmt: skip
    processor(pdb).process(event)
    balance = Ledger(pdb).balance("shop", "ann", "points", as_of="2026-12-01T00:00:00Z")
    assert balance.available == 42
    ann = profile(pdb, "ann")
    assert ann is not None and ann["segments"] == ["newsletter", "vip"]
    assert_invariants(pdb, "shop")


def test_cli_import_members_json_and_rejects_file(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = write(tmp_path / "crm.csv", [GOOD[0], ["", "", "", "", ""]])
    _register()
    args = ["import", "members", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["created"], summary["rejected"]) == (1, 1)
    assert summary["rejects_file"] == str(tmp_path / "crm.csv.rejects.csv")
    with (tmp_path / "crm.csv.rejects.csv").open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert rejects == [
        {"row": "3", "member": "", "code": "invalid_row",
         "message": "member: missing member reference"}
    ]  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("who\nann\n", encoding="utf-8")
    args[2] = str(bad)
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "missing column(s): member" in result.stdout


def test_cli_import_members_leaves_only_this_runs_rejects(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = write(tmp_path / "crm.csv", [GOOD[0], ["dee", "", "17/05/1990", "", ""]])
    rejects = tmp_path / "crm.csv.rejects.csv"
    _register()
    args = ["import", "members", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}", "--format", "json"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rejects_file"] == str(rejects)
    assert rejects.read_text(encoding="utf-8").splitlines()[1].startswith("3,dee,invalid_row,")
    write(file, [GOOD[0], ["dee", "", "1990-05-17", "", ""]])  # the row fixed
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert (summary["created"], summary["unchanged"], summary["rejected"]) == (1, 1, 0)
    assert summary["rejects_file"] is None
    assert not rejects.exists()  # the first run's error is not left behind
    table = CliRunner().invoke(app, args[:-2])  # the table summary says nothing of rejects
    assert table.exit_code == 0 and "Rejected rows" not in table.stdout
    assert not rejects.exists()
