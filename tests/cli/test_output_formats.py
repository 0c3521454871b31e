"""``--format csv`` and error text as a script reads them from the installed script.

A command whose output is a list of records writes real CSV; any other command refuses
``-f csv`` as a usage error before touching anything. Errors written to a file (stderr
is not a terminal) keep each problem on one line, whatever the terminal width.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli.support import FIDELITE

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
EVENTS = "event_id,type,member,at,amount\np1,purchase,ann,2026-01-10T10:00:00+01:00,120\n"
EVENT = '{"id": "p9", "type": "purchase", "member": "ann", "at": "2026-01-12T10:00:00Z"}'


def run(*args: str | Path, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The script as a user in an 80-column terminal runs it, output captured."""
    env = {k: v for k, v in os.environ.items() if k != "FIDELITE_DB"} | {"COLUMNS": "80"}
    if db is not None:
        env["FIDELITE_DB"] = f"sqlite:///{db}"
    return subprocess.run([FIDELITE, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def ok(*args: str | Path, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = run(*args, db=db)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def snapshot(db: Path) -> dict[str, list[str]]:
    """Every row of every table of the database."""
    with closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            table: sorted(map(repr, conn.execute(f"SELECT * FROM {table}"))) for table in tables
        }


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    """A program file and a database where ann earned 100 points and spent 30."""
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    db = tmp_path / "shop.db"
    ok("db", "upgrade", db=db)
    ok("ledger", "open", "shop", "--currency", "points", db=db)
    ok("member", "add", "ann", "-p", "shop", db=db)
    ok("ledger", "earn", "ann", "100", "-k", "e1", "-p", "shop", "--reason", "welcome, gift",
       "--at", "2026-01-10T10:00:00+00:00", db=db)  # fmt: skip
    ok("ledger", "spend", "ann", "30", "-k", "s1", "-p", "shop",
       "--at", "2026-01-11T10:00:00+00:00", db=db)  # fmt: skip
    return program, db


def test_a_long_program_check_problem_stays_on_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    channel = "store_" + "x" * 90
    bad.write_text(PROGRAM.replace("per_amount: {points: 1}",
                                   f"when: \"event.channel == '{channel}' &&\", fixed: 5"),
                   encoding="utf-8")  # fmt: skip
    proc = run("program", "check", bad)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == f"error [invalid_program] {bad}: 1 problem"
    assert len(lines) == 2
    assert lines[1].startswith(f"{bad}:6:")
    assert ": rules[0].when: invalid CEL expression at column " in lines[1]
    assert len(lines[1]) > 80


def test_an_error_message_is_not_wrapped_at_the_terminal_width(shop: tuple[Path, Path]) -> None:
    _, db = shop
    member = "m" * 100
    before = snapshot(db)
    proc = run("ledger", "spend", member, "1", "-k", "x", "-p", "shop", db=db)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("error [")
    assert member in proc.stderr
    assert snapshot(db) == before


def test_ledger_history_as_csv_is_one_row_per_transaction(shop: tuple[Path, Path]) -> None:
    _, db = shop
    proc = ok("ledger", "history", "ann", "-p", "shop", "-f", "csv", db=db)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert list(rows[0]) == ["transaction_id", "occurred_at", "kind", "currency",
                             "available_change", "pending_change", "debt_change", "reason",
                             "source", "actor", "reverses_id"]  # fmt: skip
    picked = [(r["kind"], r["currency"], r["available_change"], r["reason"]) for r in rows]
    assert picked == [("spend", "points", "-30", "spend"),
                      ("earn", "points", "100", "welcome, gift")]  # fmt: skip
    assert [r["occurred_at"][:19] for r in rows] == ["2026-01-11T10:00:00", "2026-01-10T10:00:00"]


@pytest.mark.parametrize(
    "command",
    [
        ("ledger", "balance", "ann", "-p", "shop"),
        ("ledger", "earn", "ann", "5", "-k", "e2", "-p", "shop"),
        ("ledger", "expire", "--as-of", "2026-01-01", "-p", "shop"),
        ("member", "add", "bob", "-p", "shop"),
        ("program", "check", "{program}"),
        ("program", "simulate", "{program}", "{event}"),
        ("import", "events", "{events}", "-p", "{program}"),
    ],
)
def test_csv_is_refused_where_the_output_is_not_rows(
    shop: tuple[Path, Path], command: tuple[str, ...]
) -> None:
    program, db = shop
    event = program.with_name("event.json")
    event.write_text(EVENT, encoding="utf-8")
    events = program.with_name("sales.csv")
    events.write_text(EVENTS, encoding="utf-8")
    args = [a.format(program=program, event=event, events=events) for a in command]
    before = snapshot(db)
    proc = run(*args, "-f", "csv", db=db)
    assert proc.returncode == 2
    assert proc.stdout == ""
    said = " ".join(proc.stderr.replace("│", " ").split())
    assert "Invalid value for '--format' / '-f': 'csv' is not one of 'table', 'json'" in said
    assert snapshot(db) == before
    assert not events.with_name("sales.csv.rejects.csv").exists()
