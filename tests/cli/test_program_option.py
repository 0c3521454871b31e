"""``--program`` takes the program file in every command, the id where an id is enough.

The installed ``fidelite`` script on a real SQLite file. Commands that need the file
(``import``, ``tier review``) always took it; the others took only the id, so a user
had to know which was which. A value that is not an id (``shop.yaml``) names the file
and stands for the id it declares (and, for the ledger's jobs, for ``--program-file``).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli.test_ledger_cli import as_json, cli

INACTIVE = """\
id: shop
name: Shop
time_zone: UTC
currencies: [{id: points, name: Points, value: 0.01}]
rules: [{id: base, on: [purchase], per_amount: {points: 1}}]
expiry: {mode: inactivity, months: 6}
"""


def _shop(directory: Path) -> tuple[Path, Path]:
    """A program file (id ``shop``, points lapse after 6 months without activity) and a
    database where member ann earned 40 points on 2026-01-10."""
    program, db = directory / "shop.yaml", directory / "shop.db"
    program.write_text(INACTIVE, encoding="utf-8")
    cli("db", "upgrade", db=db)
    cli("ledger", "open", "shop", "--currency", "points", db=db)
    cli("member", "add", "ann", "--program", str(program), db=db)
    cli("ledger", "earn", "ann", "40", "--key", "k1", "--at", "2026-01-10T10:00:00Z",
        "--program", str(program), db=db)  # fmt: skip
    return program, db


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Shared by the tests that change nothing (each checks that it did not)."""
    return _shop(tmp_path_factory.mktemp("shop"))


def _rows(db: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT id, kind, points FROM ledger_transactions").fetchall()


def test_a_program_file_stands_for_its_id(shop: tuple[Path, Path]) -> None:
    program, db = shop
    by_id = as_json(cli("member", "show", "ann", "--program", "shop", "-f", "json", db=db))
    by_file = as_json(cli("member", "show", "ann", "-p", str(program), "-f", "json", db=db))
    ledger_view = ("member_id", "program_id", "ref", "status")
    assert [by_file[k] for k in ledger_view] == [by_id[k] for k in ledger_view]
    assert by_file["program_id"] == "shop"
    assert (by_file["tier"], by_id["tier"]) == (None, None)  # no tiers; by id: not known
    history = as_json(cli("ledger", "history", "ann", "-p", str(program), "-f", "json", db=db))
    assert [(h["kind"], h["available_change"]) for h in history] == [("earn", 40)]
    assert as_json(cli("ledger", "check", "-p", str(program), "-f", "json", db=db))["ok"] is True


def test_a_program_file_given_as_program_applies_its_expiry_policy(tmp_path: Path) -> None:
    """For the ledger's jobs and balance the file also brings its policy, as
    ``--program-file`` does: 8 months without activity, the 40 points lapsed."""
    program, db = _shop(tmp_path)
    at = ["--as-of", "2026-09-10T00:00:00Z", "-f", "json"]
    by_id = as_json(cli("ledger", "balance", "ann", "--program", "shop", *at, db=db))
    by_file = as_json(cli("ledger", "balance", "ann", "--program", str(program), *at, db=db))
    assert (by_id["available"], by_file["available"]) == (40, 0)
    expired = as_json(cli("ledger", "expire", "-p", str(program), *at, db=db))
    shown = (expired["program"], expired["points"], expired["transactions"])
    assert shown == ("shop", {"points": 40}, 1)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["member", "show", "ann", "-p", "missing.yaml"], 2, "no program file 'missing.yaml'"),
        (["ledger", "earn", "ann", "5", "--key", "k2", "-p", "programs/shop"], 2,
         "no program file 'programs/shop'"),
        (["ledger", "balance", "ann", "-p", "missing.yml"], 2,
         "--program: no program file 'missing.yml'"),
        (["ledger", "expire", "--as-of", "2026-01-01", "-p", "missing.yaml"], 2,
         "--program: no program file 'missing.yaml'"),
        (["ledger", "earn", "ann", "5", "--key", "k3", "-p", "Shop"], 1, "no program 'Shop'"),
    ],
)  # fmt: skip
def test_a_missing_program_file_or_unknown_id_is_refused(
    shop: tuple[Path, Path], args: list[str], code: int, message: str
) -> None:
    _, db = shop
    before = _rows(db)
    proc = cli(*args, db=db, ok=False)
    assert proc.returncode == code
    assert message in " ".join((proc.stderr + proc.stdout).split())
    assert _rows(db) == before


def test_a_file_as_program_and_a_program_file_together_are_refused(
    shop: tuple[Path, Path],
) -> None:
    program, db = shop
    before = _rows(db)
    proc = cli("ledger", "expire", "--as-of", "2026-01-01", "-p", str(program),
               "--program-file", str(program), "-f", "json", db=db, ok=False)  # fmt: skip
    assert proc.returncode == 2
    error = as_json(proc)["error"]
    assert (error["code"], error["field"]) == ("usage", "program")
    assert "give one of them" in error["message"]
    assert _rows(db) == before


def test_an_invalid_program_file_is_refused_with_its_line(
    shop: tuple[Path, Path], tmp_path: Path
) -> None:
    _, db = shop
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: shop\nname: Shop\n", encoding="utf-8")
    proc = cli("member", "add", "bob", "-p", str(bad), db=db, ok=False)
    assert proc.returncode == 2
    assert "bad.yaml:1:1: currencies: Field required" in " ".join(proc.stderr.split())
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT ref FROM members ORDER BY ref").fetchall() == [("ann",)]


def test_an_id_that_no_program_file_could_declare_stays_an_id(tmp_path: Path) -> None:
    """The ledger accepts ids such as ``Cafe-Club``; ``--program`` passes them on."""
    db = tmp_path / "other.db"
    cli("db", "upgrade", db=db)
    cli("ledger", "open", "Cafe-Club", "--currency", "points", db=db)
    cli("member", "add", "ann", "--program", "Cafe-Club", db=db)
    cli("ledger", "earn", "ann", "7", "--key", "k1", "-p", "Cafe-Club", db=db)
    balance = as_json(cli("ledger", "balance", "ann", "-p", "Cafe-Club", "-f", "json", db=db))
    assert balance["available"] == 7
