"""Database failures on the command line are clear errors and a non-zero exit, never a
traceback; commands that only read a database never create it.

- ``db status``, ``ledger check`` and ``apikey list`` on a SQLite file that does not
  exist say so (``db_not_found``) and leave no file behind (they created an empty one
  and asked for ``db upgrade``);
- an unsupported backend or an unreachable server is ``[db] cannot open ...``;
- ``import``, ``apikey create`` and ``serve`` upgrade the database first: a failure
  there is ``[db] cannot upgrade ...``, as for ``db upgrade``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.support import TIER_PROGRAM, fidelite

READ_ONLY = [
    ["db", "status"],
    ["ledger", "check"],
    ["apikey", "list"],
]
UPGRADING = [
    ["db", "upgrade"],
    ["import", "members", "{members}", "-p", "{program}"],
    ["apikey", "create", "-p", "shop", "--role", "admin"],
]


def _error(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The JSON error of a failed run (``--format json``), with no traceback."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    error: dict[str, str] = json.loads(proc.stdout)["error"]
    return error


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_does_not_create_a_missing_database(
    tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "nope.db"
    proc = fidelite(*command, "--db", str(missing), "-f", "json", ok=False)
    assert _error(proc) == {
        "code": "db_not_found",
        "message": f"database file not found: {missing} "
        f"(create it with `fidelite db upgrade --db {missing}`)",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_database_in_plain_text(tmp_path: Path) -> None:
    proc = fidelite("ledger", "check", "--db", str(tmp_path / "nope2.db"), ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error [db_not_found] database file not found: {tmp_path / 'nope2.db'} "
        f"(create it with `fidelite db upgrade --db {tmp_path / 'nope2.db'}`)"
    )
    assert not (tmp_path / "nope2.db").exists()


def test_a_directory_is_not_called_a_missing_file(tmp_path: Path) -> None:
    """A directory given as the database is said to be one (creating it as a file, as
    a missing file's hint says, would fail)."""
    proc = fidelite("db", "status", "--db", str(tmp_path), "-f", "json", ok=False)
    assert _error(proc) == {
        "code": "db",
        "message": f"{tmp_path} is a directory, not a database file",
    }
    assert list(tmp_path.iterdir()) == []


def test_the_hint_quotes_a_path_with_a_space(tmp_path: Path) -> None:
    missing = tmp_path / "a dir" / "x.db"
    proc = fidelite("ledger", "check", "--db", str(missing), "-f", "json", ok=False)
    assert _error(proc)["message"] == (
        f"database file not found: {missing} (create it with "
        f"`fidelite db upgrade --db '{missing}'`)"
    )


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_an_unsupported_backend_is_a_clear_error(command: list[str]) -> None:
    proc = fidelite(*command, "--db", "mysql://u@localhost/x", "-f", "json", ok=False)
    error = _error(proc)
    assert error["code"] == "db"
    assert error["message"].startswith("cannot open mysql://u@localhost/x: ")


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_an_unreachable_server_is_a_clear_error(command: list[str]) -> None:
    url = "postgresql://postgres@127.0.0.1:1/x"
    proc = fidelite(*command, "--db", url, "-f", "json", ok=False)
    error = _error(proc)
    assert error["code"] == "db"
    assert error["message"].startswith(
        "cannot open postgresql+psycopg://postgres@127.0.0.1:1/x: "
        "(psycopg.OperationalError) connection failed"
    )


@pytest.mark.parametrize("command", UPGRADING, ids=lambda c: " ".join(c[:2]))
def test_a_failed_upgrade_before_a_command_is_a_clear_error(
    tmp_path: Path, command: list[str]
) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM)
    members = tmp_path / "members.csv"
    members.write_text("member,joined_at\nann,2026-01-01T10:00:00+01:00\n")
    target = tmp_path / "nodir" / "x.db"
    args = [a.format(members=members, program=program) for a in command]
    proc = fidelite(*args, "--db", str(target), "-f", "json", ok=False)
    assert _error(proc) == {
        "code": "db",
        "message": f"cannot upgrade sqlite:///{target}: "
        "(sqlite3.OperationalError) unable to open database file",
    }
    assert not (tmp_path / "nodir").exists()


def test_serve_reports_a_failed_upgrade(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM)
    target = tmp_path / "nodir" / "x.db"
    proc = fidelite("serve", "--program", program, "--db", str(target), "--port", "1", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error [db] cannot upgrade sqlite:///{target}: "
        "(sqlite3.OperationalError) unable to open database file"
    )
