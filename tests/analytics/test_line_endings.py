"""A CSV file whose lines end in two ways (a Windows export with Unix lines pasted in):
DuckDB stops at it with "the CSV parser reached an invalid state"; the user is told
which line ends otherwise than the header, and how."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fidelite.analytics.csvfile import first_other_line_ending
from tests.cli.support import fidelite

MIXED = b"customer_id,timestamp,amount\r\nc1,2024-01-01,10\r\nc1,2024-02-01,12\nc2,2024-01-05,5\r\n"


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "tx.csv"
    path.write_bytes(data)
    return path


def test_the_first_line_ending_otherwise_than_the_header_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        b"customer_id,timestamp,amount\r\nc1,2024-01-01,10\r\nc1,2024-02-01,12\nc2,2024-01-05,5\r\n",
    )
    found = first_other_line_ending(path)
    assert found is not None
    assert found.line == 3
    assert found.reason.startswith(
        "this line ends with LF (Unix) but line 1 ends with CRLF (Windows)"
    )


def test_unix_header_then_a_windows_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b"customer_id,timestamp,amount\nc1,2024-01-01,10\r\n")
    found = first_other_line_ending(path)
    assert found is not None and found.line == 2
    assert "ends with CRLF (Windows) but line 1 ends with LF (Unix)" in found.reason


def test_one_kind_of_ending_is_no_problem(tmp_path: Path) -> None:
    for data in (
        b"customer_id,timestamp,amount\r\nc1,2024-01-01,10\r\n",
        b"customer_id,timestamp,amount\nc1,2024-01-01,10\n",
        b"customer_id,timestamp,amount\nc1,2024-01-01,10",  # no ending on the last line
    ):
        assert first_other_line_ending(_write(tmp_path, data)) is None


@pytest.mark.parametrize(
    "args",
    [
        ["metrics", "repeat-rate", "--input"],
        ["clv", "fit", "--model", "bgnbd", "--input"],
        ["report", "--out", "OUT"],
    ],
)
def test_every_command_names_the_line_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    """Before, DuckDB's words: "cannot read the file: ... The CSV Parser state machine
    reached an invalid state", with no line."""
    path = _write(tmp_path, MIXED)
    out = tmp_path / "report"
    argv = [str(out) if a == "OUT" else a for a in args]
    argv = [*argv, str(path)] if argv[0] != "report" else ["report", str(path), *argv[1:]]
    proc = fidelite(*argv, "--format", "json", ok=False)
    assert proc.returncode != 0
    error = json.loads(proc.stdout)["error"]
    assert (error["file"], error["row"], error["column"]) == (str(path), 3, None)
    assert error["message"].startswith(
        f"{path}, line 3: this line ends with LF (Unix) but line 1 ends with CRLF"
    )
    assert not out.exists()
