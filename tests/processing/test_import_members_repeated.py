"""A members file that lists a member on several rows: rows are applied in file order
(the last row's values win), and the summary warns of the rows that name a member
again, in the table and in JSON, since a re-run applies them again (updated, not
unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.processing.importer import import_members
from fidelite.store import Database
from tests.processing.test_import_members import NOW, PROGRAM, processor, profile, write

HEADER = ["member", "segments", "birth_date"]


def test_a_member_listed_again_is_warned_and_the_last_row_wins(
    pdb: Database, tmp_path: Path
) -> None:
    rows = [["CARD-1", "vip", "1990-05-12"], ["CARD-2", "", ""], ["CARD-1", "regulars", ""],
            ["CARD-3", "", ""], ["CARD-2", "staff", ""]]  # fmt: skip
    file = write(tmp_path / "dupm.csv", rows, HEADER)
    first = import_members(processor(pdb), file, now=NOW, chunk=2)
    assert first.summary() == {
        "rows": 5, "created": 3, "updated": 2, "unchanged": 0,
        "listed_again": {"rows": 2, "first_rows": [4, 6]}, "rejected": 0,
        "rejected_by_code": {},
    }  # fmt: skip
    card1 = profile(pdb, "CARD-1")
    assert card1 is not None
    assert (card1["segments"], str(card1["birth_date"])) == (["regulars"], "1990-05-12")
    again = import_members(processor(pdb), file, now=NOW)
    assert again.summary() == {
        "rows": 5, "created": 0, "updated": 2, "unchanged": 3,
        "listed_again": {"rows": 2, "first_rows": [4, 6]}, "rejected": 0,
        "rejected_by_code": {},
    }  # fmt: skip
    card2 = profile(pdb, "CARD-2")  # (its empty first row keeps 'staff': unchanged)
    assert card2 is not None and card2["segments"] == ["staff"]


def test_a_rejected_row_is_no_earlier_row_and_one_row_per_member_has_no_warning(
    pdb: Database, tmp_path: Path
) -> None:
    rows = [["CARD-1", "VIP", ""], ["CARD-1", "vip", ""], ["CARD-2", "", ""]]
    report = import_members(processor(pdb), write(tmp_path / "m.csv", rows, HEADER), now=NOW)
    assert report.summary() == {
        "rows": 3, "created": 2, "updated": 0, "unchanged": 0, "rejected": 1,
        "rejected_by_code": {"invalid_row": 1},
    }  # fmt: skip


def test_the_cli_shows_the_warning_in_table_and_json(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    rows = [["CARD-1", "vip"], ["CARD-2", ""], ["CARD-1", "regulars"]]
    file = write(tmp_path / "dupm.csv", rows, ["member", "segments"])
    _register()
    args = ["import", "members", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}"]  # fmt: skip
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert (
        "Warning: 1 row(s) name a member an earlier row of the file names (row 4); "
        "rows are applied in file order, so the last row's values win, and a re-run applies "
        "them again (rows that differ count as updated each time); keep one row per member"
    ) in " ".join(table.stdout.split())
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "rows": 3, "created": 0, "updated": 2, "unchanged": 1,
        "listed_again": {"rows": 1, "first_rows": [4]}, "rejected": 0,
        "rejected_by_code": {}, "rejects_file": None,
    }  # fmt: skip
