"""The CLI as a user runs it: the installed ``fidelite`` script on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from fidelite import __version__
from tests.cli.support import fidelite


def cli(*args: str, db: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``fidelite args`` on the SQLite file ``db`` (run in this process: tests/cli/support)."""
    return fidelite(*args, db=None if db is None else f"sqlite:///{db}", ok=ok)


def as_json(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout)


@pytest.fixture
def dbfile(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    cli("db", "upgrade", db=path)
    cli("ledger", "open", "default", "--currency", "points", db=path)
    cli("member", "add", "CARD-1", db=path)
    return path


def test_version_prints_the_package_version() -> None:
    # the installed script itself, in a process of its own
    assert fidelite("--version", separate=True).stdout.strip() == f"fidelite {__version__}"


def test_every_command_has_help_with_an_example() -> None:
    commands = [
        ["db", "upgrade"],
        ["db", "status"],
        ["member", "add"],
        ["member", "show"],
        ["ledger", "open"],
        ["ledger", "balance"],
        ["ledger", "history"],
        ["ledger", "earn"],
        ["ledger", "spend"],
        ["ledger", "adjust"],
        ["ledger", "reverse"],
        ["ledger", "release"],
        ["ledger", "release-due"],
        ["ledger", "expire"],
        ["ledger", "check"],
        ["demo"],
    ]
    for command in commands:
        out = cli(*command, "--help").stdout
        assert "Example: fidelite " + command[0] in out.replace("\n", " "), command


def test_db_upgrade_then_status_reports_current(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    up = as_json(cli("db", "upgrade", "--db", str(path), "--format", "json"))
    status = as_json(cli("db", "status", "--db", str(path), "--format", "json"))
    assert up["revision"] == status["head"] and status["current"] is True


def test_commands_refuse_a_database_that_is_not_upgraded(tmp_path: Path) -> None:
    proc = cli("ledger", "balance", "X", "--db", str(tmp_path / "empty.db"), ok=False)
    assert proc.returncode == 1
    assert "fidelite db upgrade" in proc.stderr


def test_earn_spend_balance_history_in_json(dbfile: Path) -> None:
    earn = as_json(
        cli(
            "ledger",
            "earn",
            "CARD-1",
            "120",
            "--key",
            "o1",
            "--at",
            "2026-01-01",
            "--expires",
            "2027-01-01",
            "--source",
            "order:1",
            "-f",
            "json",
            db=dbfile,
        )
    )
    assert (earn["points"], earn["available_after"], earn["replayed"]) == (120, 120, False)
    again = as_json(
        cli(
            "ledger",
            "earn",
            "CARD-1",
            "120",
            "--key",
            "o1",
            "--at",
            "2026-01-01",
            "--expires",
            "2027-01-01",
            "--source",
            "order:1",
            "-f",
            "json",
            db=dbfile,
        )
    )
    assert again["replayed"] is True and again["transaction_id"] == earn["transaction_id"]
    cli("ledger", "spend", "CARD-1", "20", "--key", "s1", "--at", "2026-01-02", db=dbfile)
    bal = as_json(
        cli("ledger", "balance", "CARD-1", "--as-of", "2026-12-15", "-f", "json", db=dbfile)
    )
    assert (bal["available"], bal["pending"], bal["expiring_soon"], bal["debt"]) == (100, 0, 100, 0)
    hist = as_json(cli("ledger", "history", "CARD-1", "-f", "json", db=dbfile))
    assert [(h["kind"], h["available_change"], h["source"]) for h in hist] == [
        ("spend", -20, None),
        ("earn", 120, "order:1"),
    ]


def test_rejection_exits_non_zero_with_code_and_changes_nothing(dbfile: Path) -> None:
    proc = cli("ledger", "spend", "CARD-1", "5", "--key", "s1", "-f", "json", db=dbfile, ok=False)
    assert proc.returncode == 1
    assert as_json(proc)["error"]["code"] == "insufficient_points"
    text = cli("ledger", "spend", "CARD-1", "5", "--key", "s1", db=dbfile, ok=False)
    assert "[insufficient_points]" in text.stderr
    assert as_json(cli("ledger", "history", "CARD-1", "-f", "json", db=dbfile)) == []


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["ledger", "earn", "NOPE", "10", "--key", "k"], "unknown_member"),
        (["ledger", "earn", "CARD-1", "10", "--key", "k", "-c", "stars"], "unknown_currency"),
        (["ledger", "earn", "CARD-1", "0", "--key", "k"], "invalid_request"),
        (["ledger", "earn", "--key", "k", "--", "CARD-1", "-3"], "invalid_request"),
    ],
)
def test_bad_input_names_the_problem(dbfile: Path, args: list[str], code: str) -> None:
    proc = cli(args[0], args[1], "-f", "json", *args[2:], db=dbfile, ok=False)
    assert proc.returncode == 1
    assert as_json(proc)["error"]["code"] == code
    assert as_json(cli("ledger", "history", "CARD-1", "-f", "json", db=dbfile)) == []


OUTSIDE = "is outside the calendar once in UTC"
DATE_REFUSALS = [
    (["balance", "CARD-1", "--as-of", "9999-12-31T23:59:59-05:00"], "--as-of", OUTSIDE),
    (["earn", "CARD-1", "10", "-k", "k", "--at", "0001-01-01T00:00:00+05:00"], "--at", OUTSIDE),
    (["earn", "CARD-1", "10", "-k", "k", "--expires", "9999-12-31T23:59:59-05:00"], "--expires",
     OUTSIDE),
    (["earn", "CARD-1", "10", "-k", "k", "--pending-until", "9999-12-31T20:00:00-08:00"],
     "--pending-until", OUTSIDE),
    (["spend", "CARD-1", "10", "-k", "k", "--at", "0001-01-01T00:00:00+05:00"], "--at", OUTSIDE),
    (["adjust", "CARD-1", "10", "--reason", "r", "--actor", "a", "-k", "k", "--expires",
      "9999-12-31T23:59:59-05:00"], "--expires", OUTSIDE),
    (["reverse", "1", "-k", "k", "--at", "0001-01-01T00:00:00+05:00"], "--at", OUTSIDE),
    (["release", "1", "-k", "k", "--at", "9999-12-31T23:59:59-05:00"], "--at", OUTSIDE),
    (["expire", "--as-of", "0001-01-01T00:00:00+05:00"], "--as-of", OUTSIDE),
    (["release-due", "--as-of", "9999-12-31T23:59:59-05:00"], "--as-of", OUTSIDE),
    (["earn", "CARD-1", "10", "-k", "k", "--at", "2026-02-30"], "--at",
     "is not an ISO 8601 date or time"),
    (["expire", "--as-of", "soon"], "--as-of", "is not an ISO 8601 date or time"),
    (["balance", "CARD-1", "--as-of", "2026-12-01T10:00"], "--as-of", "needs a UTC offset"),
]  # fmt: skip


def test_a_date_option_out_of_the_calendar_or_malformed_is_a_usage_error(dbfile: Path) -> None:
    """Exit 2, the option and its value named, before the database is read or written."""
    cli("ledger", "earn", "CARD-1", "50", "-k", "e1", "--at", "2026-01-01", "--pending-until",
        "2026-02-01", db=dbfile)  # fmt: skip
    before = dump(dbfile)
    for args, option, problem in DATE_REFUSALS:
        value = args[args.index(option) + 1]
        proc = cli("ledger", *args, db=dbfile, ok=False)
        assert proc.returncode == 2, args
        assert f"[usage] {option}: '{value}' {problem}" in " ".join(proc.stderr.split()), args
        error = as_json(cli("ledger", *args, "-f", "json", db=dbfile, ok=False))["error"]
        assert error["code"] == "usage" and error["message"].startswith(f"{option}: '{value}'")
    assert dump(dbfile) == before


def test_non_integer_points_are_refused_by_the_parser(dbfile: Path) -> None:
    proc = cli("ledger", "earn", "CARD-1", "1.5", "--key", "k", db=dbfile, ok=False)
    assert proc.returncode == 2 and "points" in proc.stderr


def test_adjust_reverse_expire_and_check(dbfile: Path) -> None:
    cli(
        "ledger",
        "adjust",
        "CARD-1",
        "200",
        "--reason",
        "outage",
        "--actor",
        "ops",
        "--key",
        "g1",
        db=dbfile,
    )
    # a credit already past its expiry date is refused (it would be expired at once): the
    # lot the expiry job takes is an earn dated back
    cli("ledger", "earn", "CARD-1", "200", "--key", "e0", "--at", "2026-01-01", "--expires",
        "2026-03-01", db=dbfile)  # fmt: skip
    earn = as_json(
        cli(
            "ledger",
            "earn",
            "CARD-1",
            "50",
            "--key",
            "e1",
            "--at",
            "2026-01-01",
            "-f",
            "json",
            db=dbfile,
        )
    )
    rev = as_json(
        cli(
            "ledger",
            "reverse",
            str(earn["transaction_id"]),
            "--key",
            "r1",
            "--points",
            "20",
            "-f",
            "json",
            db=dbfile,
        )
    )
    assert (rev["points"], rev["reverses_id"]) == (20, earn["transaction_id"])
    job = as_json(cli("ledger", "expire", "--as-of", "2026-03-01", "-f", "json", db=dbfile))
    assert (job["points"], job["lots"]) == ({"points": 200}, 1)
    check = as_json(cli("ledger", "check", "-f", "json", db=dbfile))
    assert check == {"ok": True, "violations": []}


def test_demo_runs_and_the_books_balance(tmp_path: Path) -> None:
    out = as_json(cli("demo", "--db-file", str(tmp_path / "demo.db"), "--format", "json"))
    assert out["books_balance"] is True
    last = out["steps"][-1]
    assert (last["available"], last["pending"], last["debt"]) == (0, 0, 80)


INACTIVE_PROGRAM = """\
id: cafe
name: Cafe
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
expiry: {mode: inactivity, months: 1, warn_days: 10}
"""


def cafe(tmp_path: Path, *sales: str) -> tuple[Path, Path]:
    """A database where the program file (expiry by inactivity) imported ``sales``
    (CSV lines event_id,type,member,at,amount); returns it and the program file."""
    db = tmp_path / "cafe.db"
    program = tmp_path / "program.yaml"
    program.write_text(INACTIVE_PROGRAM)
    path = tmp_path / "sales.csv"
    path.write_text("\n".join(["event_id,type,member,at,amount", *sales]) + "\n")
    cli("db", "upgrade", db=db)
    cli("import", "events", str(path), "--program", str(program), db=db)
    return db, program


def test_expire_with_the_program_file_applies_inactivity(tmp_path: Path) -> None:
    db, program = cafe(tmp_path, "e1,purchase,ann,2025-01-10T10:00:00+00:00,42",
                       "e2,purchase,bob,2026-11-25T10:00:00+00:00,10")  # fmt: skip
    dates_only = cli("ledger", "expire", "--as-of", "2026-12-01", "--program", "cafe", db=db)
    assert "expired 0 points" in dates_only.stdout and "--program-file" in dates_only.stdout
    args = ["ledger", "expire", "--as-of", "2026-12-01", "--program-file", str(program)]
    job = as_json(cli(*args, "-f", "json", db=db))
    assert job == {
        "as_of": "2026-12-01T00:00:00+00:00", "program": "cafe",
        "inactivity": {"months": 1, "time_zone": "UTC"},
        "transactions": 1, "lots": 1, "points": {"points": 42},
    }  # fmt: skip
    assert as_json(cli(*args, "-f", "json", db=db))["points"] == {}  # re-run: nothing twice
    balances = [
        as_json(cli("ledger", "balance", ref, "-p", "cafe", "--as-of", "2026-12-01", "-f", "json",
                    db=db))["available"]
        for ref in ("ann", "bob")
    ]  # fmt: skip
    assert balances == [0, 10]
    assert as_json(cli("ledger", "check", "-f", "json", db=db))["ok"] is True


def test_dates_at_the_calendars_ends_work(tmp_path: Path) -> None:
    """Year 1 and year 9999 are dates like others: the balance answers, and the expiry
    job at year 1; at 9999 it refuses the date (later than now) and changes nothing (the
    ledger's own expiry at 9999: tests/ledger/test_inactivity.py)."""
    db, program = cafe(tmp_path, "e1,purchase,ann,2025-01-10T10:00:00+00:00,42")
    before = dump(db)
    expire = ["ledger", "expire", "--program-file", str(program), "-f", "json", "--as-of"]
    # a month before year 1 is before the calendar: nothing can have lapsed yet
    assert as_json(cli(*expire, "0001-01-01", db=db))["points"] == {}
    assert dump(db) == before
    cli("ledger", "earn", "ann", "5", "-p", "cafe", "-k", "late", "--at", "9999-12-20",
        "--expires", "9999-12-31T12:00:00+00:00", db=db)  # fmt: skip
    balance = ["ledger", "balance", "ann", "-p", "cafe", "-f", "json", "--as-of", "9999-12-20"]
    late = as_json(cli(*balance, db=db))  # its 30-day window stops at the calendar's end
    assert (late["available"], late["expiring_soon"]) == (47, 5)
    earned = dump(db)
    refused = cli(*expire, "9999-12-31T23:59:59+00:00", db=db, ok=False)
    assert (refused.returncode, as_json(refused)["error"]["field"]) == (2, "as_of")
    assert dump(db) == earned
    assert as_json(cli("ledger", "check", "-f", "json", db=db))["ok"] is True


def dump(db: Path) -> list[str]:
    """Every row of the SQLite file (the WAL included), to prove nothing changed."""
    with closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())


def test_expire_refuses_a_program_file_that_disagrees_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "cafe.db"
    program = tmp_path / "program.yaml"
    program.write_text(INACTIVE_PROGRAM)
    cli("db", "upgrade", db=db)
    cli("ledger", "open", "cafe", db=db)
    cli("member", "add", "ann", "-p", "cafe", db=db)
    cli("ledger", "earn", "ann", "42", "-p", "cafe", "--key", "e1", "--at", "2025-01-10", db=db)
    before = dump(db)
    args = ["ledger", "expire", "--as-of", "2026-12-01", "-f", "json"]
    wrong_id = cli(*args, "--program-file", str(program), "--program", "shop", db=db, ok=False)
    assert wrong_id.returncode == 1
    assert as_json(wrong_id)["error"] == {
        "code": "program_mismatch", "field": "program",
        "message": f"--program 'shop' does not match the id 'cafe' of {program}",
    }  # fmt: skip
    broken = tmp_path / "broken.yaml"
    broken.write_text(INACTIVE_PROGRAM.replace("months: 1", "months: 0"))
    bad = cli(*args, "--program-file", str(broken), db=db, ok=False)
    error = as_json(bad)["error"]
    assert (bad.returncode, error["code"], error["field"]) == (1, "invalid_program", "program_file")
    assert error["message"].startswith(f"{broken}:7:") and "expiry.months" in error["message"]
    assert dump(db) == before
