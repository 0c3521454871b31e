"""Ctrl-C during `fidelite import members`: as for events, the first stops the import
after the chunk in progress and the command says which rows are committed (summary,
rejects, exit 130); a second aborts the chunk; a re-run completes the file."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fidelite.cli import imports
from fidelite.cli.main import _register, app
from fidelite.processing.importer import MemberImportReport, import_members
from fidelite.processing.tables import member_states
from fidelite.store import Database
from tests.processing.test_import_members import NOW, PROGRAM, processor, write

HEADER = ["member", "segments"]
ROWS = [["m1", "vip"], ["m2", ""], ["m3", "VIP"], ["m4", ""], ["m5", ""]]


def _members(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(member_states.c.member_ref)).scalars())


def test_stop_ends_the_members_import_between_chunks(pdb: Database, tmp_path: Path) -> None:
    file = write(tmp_path / "crm.csv", ROWS, HEADER)
    asked: list[int] = []

    def stop() -> bool:  # asked before each chunk: yes before the third
        asked.append(1)
        return len(asked) == 3

    report = import_members(processor(pdb), file, now=NOW, chunk=2, stop=stop)
    assert (report.stopped, report.rows, report.last_row, report.created) == (True, 4, 5, 3)
    assert [r.row for r in report.rejected] == [4]
    assert _members(pdb) == {"m1", "m2", "m4"}
    again = import_members(processor(pdb), file, now=NOW, chunk=2)
    assert (again.stopped, again.rows, again.last_row) == (False, 5, 6)
    assert (again.created, again.unchanged, [r.row for r in again.rejected]) == (1, 3, [4])
    assert _members(pdb) == {"m1", "m2", "m4", "m5"}


def _cli(pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kills: int) -> Any:
    """Run the command with ``kills`` real SIGINTs sent as the import asks whether to
    stop before its second chunk (the first one committed)."""
    file = write(tmp_path / "crm.csv", ROWS, HEADER)
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    real = imports.import_members

    def interrupted_before_chunk_2(*args: Any, **kwargs: Any) -> MemberImportReport:
        stop, asked = kwargs["stop"], []

        def ctrl_c() -> bool:
            asked.append(1)
            if len(asked) == 2:
                for _ in range(kills):
                    os.kill(os.getpid(), signal.SIGINT)
            return bool(stop())

        return real(*args, **{**kwargs, "stop": ctrl_c})

    monkeypatch.setattr(imports, "import_members", interrupted_before_chunk_2)
    _register("import")
    command = ["import", "members", str(file), "--program", str(program), "--db", pdb.url,
               "--chunk", "3", "--format", "json"]  # fmt: skip
    return CliRunner().invoke(app, command), file


def test_ctrl_c_stops_the_members_import_with_its_summary(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, file = _cli(pdb, tmp_path, monkeypatch, kills=1)
    assert result.exit_code == 130
    assert json.loads(result.stdout) == {
        "rows": 3, "created": 2, "updated": 0, "unchanged": 0, "rejected": 1,
        "rejected_by_code": {"invalid_row": 1},
        "interrupted": {"rows_done": 3, "last_row": 4, "rows_left": 2},
        "rejects_file": str(file.with_name("crm.csv.rejects.csv")),
    }  # fmt: skip
    assert (
        "Interrupted: the first 3 of 5 rows (up to row 4) are done and committed (2 created, "
        "0 updated, 0 unchanged, 1 rejected); the 2 rows after them were not imported. Run "
        "the same command again to import the rest: the rows already imported are counted "
        "as unchanged, except those of a member the file lists more than once "
        "(listed_again), which count as updated when they differ."
    ) in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert file.with_name("crm.csv.rejects.csv").read_text().splitlines()[1:] == [
        "4,m3,invalid_row,\"segments: 'VIP' is not a segment name (lower-case letters, "
        'digits and _, starting with a letter, at most 64 characters, as rules write them)"'
    ]
    assert _members(pdb) == {"m1", "m2"}


def test_a_second_ctrl_c_aborts_the_members_chunk(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, file = _cli(pdb, tmp_path, monkeypatch, kills=2)
    assert result.exit_code == 130
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["rows_committed"], error["last_row"]) == ("import_aborted", 3, 4)
    assert (
        "Aborted: the first 3 of 5 rows (up to row 4) committed; the chunk in progress was "
        "rolled back (or committed whole, had it just finished). No rejects file was "
        "written. Run the same command again to import the rest: the rows already imported "
        "are counted as unchanged, except those of a member the file lists more than once "
        "(listed_again), which count as updated when they differ."
    ) in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert _members(pdb) == {"m1", "m2"}
    assert not file.with_name("crm.csv.rejects.csv").exists()


def test_the_resume_message_says_a_member_listed_twice_counts_as_updated(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after ann's two rows (one row per chunk): the message tells that the
    re-run counts such rows as updated, and the re-run does."""
    file = write(tmp_path / "crm.csv", [["ann", "a"], ["ann", "b"], ["bob", "c"]], HEADER)
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    real = imports.import_members

    def interrupted_before_row_4(*args: Any, **kwargs: Any) -> MemberImportReport:
        stop, asked = kwargs["stop"], []

        def ctrl_c() -> bool:
            asked.append(1)
            if len(asked) == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return bool(stop())

        return real(*args, **{**kwargs, "stop": ctrl_c})

    monkeypatch.setattr(imports, "import_members", interrupted_before_row_4)
    _register("import")
    command = ["import", "members", str(file), "--program", str(program), "--db", pdb.url,
               "--chunk", "1", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 130
    assert " ".join(result.stderr.split()) == (
        "Interrupted: stopping after the chunk in progress (1 rows at most) (Ctrl-C again to "
        "abort it) Interrupted: the first 2 of 3 rows (up to row 3) are done and committed "
        "(1 created, 1 updated, 0 unchanged, 0 rejected); the 1 rows after them were not "
        "imported. Run the same command again to import the rest: the rows already imported "
        "are counted as unchanged, except those of a member the file lists more than once "
        "(listed_again), which count as updated when they differ."
    )
    monkeypatch.setattr(imports, "import_members", real)
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {
        "rows": 3, "created": 1, "updated": 2, "unchanged": 0,
        "listed_again": {"rows": 1, "first_rows": [3]}, "rejected": 0,
        "rejected_by_code": {}, "rejects_file": None,
    }  # fmt: skip
    assert _members(pdb) == {"ann", "bob"}
