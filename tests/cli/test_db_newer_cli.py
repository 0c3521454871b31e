"""Every command refuses a database upgraded by a newer fidelite with one clear error
naming the revision (``db_too_new``, exit 1), and leaves it as it is: ``db upgrade``
failed with "Can't locate revision identified by '0009'" after ``db status`` told the
user to run it, and ``serve`` ended in a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fidelite.store import Database
from fidelite.store.migrate import head_revision
from tests.cli.support import TIER_PROGRAM, fidelite

COMMANDS = [
    ["db", "upgrade"],
    ["db", "status"],
    ["ledger", "check"],
    ["ledger", "balance", "ann", "-p", "shop"],
    ["import", "members", "{members}", "-p", "{program}"],
    ["apikey", "create", "-p", "shop", "--role", "admin"],
    ["apikey", "list"],
]


def _newer_database(path: Path) -> str:
    """A database at this fidelite's head, then marked as one revision further."""
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    head = head_revision(database)
    database.dispose()
    assert head is not None
    newer = f"{int(head) + 1:04d}"
    with sqlite3.connect(path) as con:
        con.execute("UPDATE alembic_version SET version_num = ?", (newer,))
    return newer


def _state(path: Path) -> list[tuple[str, int]]:
    """Each table of ``path`` with its number of rows, and the revision."""
    with sqlite3.connect(path) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = [(n, con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names]
        (revision,) = con.execute("SELECT version_num FROM alembic_version").fetchone()
    return [*sorted(counts), (revision, 0)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_newer_database_is_refused_naming_its_revision(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "shop.db"
    newer = _newer_database(path)
    head = f"{int(newer) - 1:04d}"
    before = _state(path)
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM)
    members = tmp_path / "members.csv"
    members.write_text("member,joined_at\nann,2026-01-01T10:00:00+01:00\n")
    args = [a.format(members=members, program=program) for a in command]
    proc = fidelite(*args, "--db", str(path), "-f", "json", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["error"] == {
        "code": "db_too_new",
        "message": f"sqlite:///{path}: the database was upgraded by a newer fidelite: it is "
        f"at schema revision {newer}, which this fidelite does not know (its newest is "
        f"{head}); use that newer fidelite",
    }
    assert _state(path) == before


def test_serve_refuses_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    newer = _newer_database(path)
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM)
    proc = fidelite("serve", "--program", program, "--db", str(path), "--port", "1", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error [db_too_new] sqlite:///{path}: the database was upgraded by a newer "
        f"fidelite: it is at schema revision {newer}, which this fidelite does not know "
        f"(its newest is {int(newer) - 1:04d}); use that newer fidelite"
    )
