"""`fidelite program init` to a path it cannot write says why, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()
runner = CliRunner()


def _init(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["program", "init", *args, "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, json.loads(result.stdout)["error"]


def test_init_into_a_missing_directory_says_so(tmp_path: Path) -> None:
    file = tmp_path / "nodir" / "p.yaml"
    assert _init(str(file)) == (
        1,
        {"code": "io", "message": f"{file}: cannot write: there is no directory {file.parent}"},
    )
    assert list(tmp_path.iterdir()) == []


def test_init_under_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("mine", encoding="utf-8")
    file = tmp_path / "p.yaml" / "x.yaml"
    assert _init(str(file)) == (
        1,
        {"code": "io", "message": f"{file}: cannot write: {tmp_path / 'p.yaml'} is a file"},
    )
    assert (tmp_path / "p.yaml").read_text(encoding="utf-8") == "mine"


def test_init_onto_a_directory_names_it_even_with_force(tmp_path: Path) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    message = (
        f"{folder} is a directory: give the program file to write in it"
        f" (e.g. {folder / 'program.yaml'})"
    )
    for force in ([], ["--force"]):
        assert _init(str(folder), *force) == (1, {"code": "io", "message": message})
    assert list(folder.iterdir()) == []
