"""A program, event or member file that is not UTF-8 is refused naming the file and the
place of the first byte that is not, instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.program import ProgramError, load_program

_register()
runner = CliRunner()

PURCHASE = {
    "id": "e1",
    "type": "purchase",
    "member": "m1",
    "at": "2026-11-28T10:00:00+01:00",
    "amount": "42.90",
}


def test_a_latin1_program_file_is_refused_at_its_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "latin.yaml"
    # "café" in Latin-1 on line 3, after a UTF-8 "é" on the same line.
    file.write_bytes("id: cafe\nname: x\n# é caf".encode() + b"\xe9\n")
    with pytest.raises(ProgramError) as info:
        load_program(file)
    assert [str(p) for p in info.value.problems] == [
        f"{file}:3:8: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]


def test_program_check_refuses_a_latin1_file_without_a_traceback(tmp_path: Path) -> None:
    file = tmp_path / "latin.yaml"
    file.write_bytes(b"id: caf\xe9\nname: x\n")
    result = runner.invoke(app, ["program", "check", str(file), "--format", "json"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert json.loads(result.stdout)["error"]["problems"] == [
        {
            "file": str(file),
            "line": 1,
            "column": 8,
            "field": "",
            "message": "not UTF-8 text (byte 0xe9); save the file as UTF-8",
        }
    ]
    assert file.read_bytes() == b"id: caf\xe9\nname: x\n"


@pytest.mark.parametrize("which", ["event", "member"])
def test_simulate_refuses_a_latin1_event_or_member_file(tmp_path: Path, which: str) -> None:
    program = tmp_path / "program.yaml"
    assert runner.invoke(app, ["program", "init", str(program)]).exit_code == 0
    event = tmp_path / "event.json"
    member = tmp_path / "member.json"
    event.write_text(json.dumps(PURCHASE), encoding="utf-8")
    member.write_text('{"attributes": {"city": "Paris"}}', encoding="utf-8")
    bad = event if which == "event" else member
    bad.write_bytes(b'{\n  "attributes": {"city": "Li\xe8ge"}}')
    args = ["program", "simulate", str(program), str(event), "--member", str(member)]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert json.loads(result.stdout)["error"] == {
        "code": "invalid_json",
        "message": f"{bad}:2:29: not UTF-8 text (byte 0xe8); save the file as UTF-8",
    }
