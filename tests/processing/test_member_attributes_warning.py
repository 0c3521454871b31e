"""The members import's table names the rows listed again as a person reads them:
``row 4``, ``rows 4, 5`` (it said ``first: rows 4``)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.processing.test_import_members import PROGRAM


def _file(path: Path, lines: list[str], header: str = "member,attributes") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_the_table_names_the_rows_listed_again(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = _file(tmp_path / "m.csv", ["ann", "bo", "ann", "bo"], "member")
    _register()
    args = ["import", "members", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}"]  # fmt: skip
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    shown = " ".join(table.stdout.split())
    assert "Warning: 2 row(s) name a member an earlier row of the file names (rows 4, 5); " in shown
    assert "first:" not in shown
