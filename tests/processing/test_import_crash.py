"""Crash safety of `fidelite import events`: the import process killed (kill -9) or
interrupted (Ctrl-C) in the middle of a file, then the same command run again, leaves
exactly the books of one clean import of the file (SQLite file and PostgreSQL): every
balance, lot, ledger entry, recorded event, member state, tier change and webhook event.

A chunk of rows is one transaction, so a kill leaves the chunks before it committed and
the one it interrupts not at all; the re-run counts the committed rows as duplicates and
imports the rest. Its rejects file names every bad row of the file once: a rejected row
is never recorded, so the re-run rejects it again. Slow: it starts `fidelite import`
several times per database."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.ledger import assert_invariants
from fidelite.processing.tables import events as processed_events
from fidelite.store import Database
from tests.conftest import BACKENDS, make_database

pytestmark = pytest.mark.slow
FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
CHUNK = 40  # rows per transaction: 15 chunks in the file, so a kill lands inside one
MEMBERS = 50
PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: signup, on: [signup], fixed: 100}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 1000}
"""
HEADER = ["event_id", "type", "member", "at", "amount", "refund_of"]


def _rows() -> tuple[list[list[str]], dict[int, str]]:
    """600 rows for 50 members, in time order (before today: the subprocesses
    check dates against the machine's clock): purchases, a signup per member, refunds
    (whole and partial) of purchases earlier in the file, one row repeated as is (a
    duplicate within the file) and bad rows spread over the file, each with the code it
    is rejected with (by row number: the header is row 1)."""
    rows: list[list[str]] = []
    bad: dict[int, str] = {}
    bought: list[tuple[str, str, str]] = []
    for i in range(600):
        at = f"2026-{9 + i // 300:02d}-{1 + i % 300 // 16:02d}T{8 + i % 16 // 2:02d}:{i % 2 * 30:02d}:00+02:00"  # noqa: E501
        member = f"m{i * 7 % MEMBERS}"
        if i < MEMBERS:
            rows.append([f"s{i}", "signup", member, at, "", ""])
        elif i % 97 == 13:
            bad[len(rows) + 2] = "invalid_row"
            rows.append([f"x{i}", "purchase", member, at, "12,50", ""])
        elif i % 131 == 7:
            bad[len(rows) + 2] = "unknown_event_type"
            rows.append([f"v{i}", "visit", member, at, "", ""])
        elif i % 173 == 11:
            bad[len(rows) + 2] = "event_id_conflict"  # the id of an earlier purchase
            rows.append([bought[0][0], "purchase", f"other{i}", at, "5.00", ""])
        elif i == 300:
            rows.append(list(rows[-1]))  # the row before, again: a duplicate
        elif i % 11 == 5 and bought:
            event_id, whose, amount = bought.pop(i % len(bought))
            part = amount if i % 2 else f"{float(amount) / 2:.2f}"
            rows.append([f"r{i}", "refund", whose, at, part, event_id])
        else:
            amount = f"{5 + i * 37 % 190}.{i * 13 % 100:02d}"
            rows.append([f"p{i}", "purchase", member, at, amount, ""])
            bought.append((f"p{i}", member, amount))
    return rows, bad


ROWS, BAD = _rows()


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("import_crash")
    path = directory / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    (directory / "program.yaml").write_text(PROGRAM)
    return path


def _command(file: Path, url: str, rejects: Path) -> list[str]:
    program = file.with_name("program.yaml")
    return ["import", "events", str(file), "--program", str(program), "--db", url,
            "--rejects", str(rejects), "--chunk", str(CHUNK), "--format", "json"]  # fmt: skip


def _start(file: Path, url: str, rejects: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([FIDELITE, *_command(file, url, rejects)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _run(file: Path, url: str, rejects: Path) -> dict[str, Any]:
    """The import run to its end; its JSON summary."""
    done = subprocess.run([FIDELITE, *_command(file, url, rejects)], text=True,
                          capture_output=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def _recorded(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(processed_events)).scalar_one())


def _recorded_ids(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(processed_events.c.event_id)).scalars())


def _wait_for(db: Database, proc: subprocess.Popen[str], at_least: int) -> int:
    """Poll until ``at_least`` events are recorded (the import still running)."""
    deadline = time.monotonic() + 120
    while (count := _recorded(db)) < at_least:
        assert proc.poll() is None, f"the import ended first: {proc.communicate()}"
        assert time.monotonic() < deadline, "the import did not get that far"
        time.sleep(0.01)
    return count


def _committed_chunks(ids: set[str]) -> int:
    """How many whole chunks of the file ``ids`` are: the recorded events must be those
    of the good rows of the first k chunks, for some k (a chunk is all or nothing)."""
    good = [row[0] for number, row in enumerate(ROWS, start=2) if number not in BAD]
    for k in range(len(ROWS) // CHUNK + 2):
        rows = {row[0] for number, row in enumerate(ROWS[: k * CHUNK], start=2)
                if number not in BAD}  # fmt: skip
        if ids == rows:
            return k
    raise AssertionError(f"{len(ids)} events recorded: not whole chunks ({len(good)} good)")


def _books(db: Database) -> dict[str, list[Any]]:
    """Everything an import writes, with each ledger transaction named by its key
    instead of its generated id, and without wall-clock times: on PostgreSQL a killed
    transaction used up sequence numbers, so the ids differ from a clean run's (a
    refund's key holds the id of the transaction it reverses: ``refund:r9:42``)."""
    queries = {
        "accounts": "SELECT m.ref, a.currency, a.kind, a.balance FROM accounts a "
        "LEFT JOIN members m ON m.id = a.member_id ORDER BY 1, 2, 3",
        "lots": "SELECT m.ref, l.currency, t.idempotency_key, l.points, l.remaining, l.state, "
        "l.earned_at, l.expires_at, l.pending_until FROM lots l "
        "JOIN members m ON m.id = l.member_id "
        "JOIN ledger_transactions t ON t.id = l.earn_transaction_id",
        "transactions": "SELECT t.idempotency_key, t.kind, m.ref, t.currency, t.points, "
        "t.reversed_points, r.idempotency_key, t.reason, t.source, t.occurred_at "
        "FROM ledger_transactions t LEFT JOIN members m ON m.id = t.member_id "
        "LEFT JOIN ledger_transactions r ON r.id = t.reverses_id",
        "postings": "SELECT t.idempotency_key, a.kind, a.currency, m.ref, e.idempotency_key, "
        "p.points FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
        "JOIN accounts a ON a.id = p.account_id LEFT JOIN members m ON m.id = a.member_id "
        "LEFT JOIN lots l ON l.id = p.lot_id "
        "LEFT JOIN ledger_transactions e ON e.id = l.earn_transaction_id",
        "members": "SELECT ref, status FROM members ORDER BY 1",
        "events": "SELECT event_id, member_ref, type, occurred_at, amount, refunded_amount, "
        "coupon, coupon_accepted, refund_of, trace FROM processed_events ORDER BY 1",
        "earnings": "SELECT g.event_id, g.currency, t.idempotency_key, g.points, g.reversed "
        "FROM event_earnings g JOIN ledger_transactions t ON t.id = g.transaction_id",
        "states": "SELECT member_ref, tier, tier_since, review_at, grace_until, assigned_until, "
        "segments, attributes, purchases, joined_at, birth_date FROM member_states ORDER BY 1",
        "tiers": "SELECT member_ref, at, kind, from_tier, to_tier, value, reason, event_id, "
        "assigned_until FROM tier_changes ORDER BY id",
        "outbox": "SELECT event_type, member_ref, dedup_key, payload FROM outbox ORDER BY id",
    }
    with db.read() as conn:
        found = conn.execute(text("SELECT id, idempotency_key FROM ledger_transactions"))
        keys = {row[0]: row[1] for row in found}
        books = {name: [tuple(row) for row in conn.execute(text(sql))]
                 for name, sql in queries.items()}  # fmt: skip

    def named(key: str) -> str:
        """A refund's key (``refund:<event>:<reversed id>``) with the reversed one's key."""
        if not key.startswith("refund:"):
            return key
        event, reversed_id = key[len("refund:") :].rsplit(":", 1)
        return f"refund:{event}:{keys[int(reversed_id)]}"

    def key(value: Any) -> Any:
        """A transaction id (int or text) as its key."""
        return named(keys[int(value)]) if isinstance(value, int | str) else value

    def ids_as_keys(data: Any) -> Any:
        data = json.loads(data) if isinstance(data, str) else data
        if isinstance(data, list):
            return [ids_as_keys(item) for item in data]
        ids = ("transaction_id", "reverses_transaction_id")
        return {k: key(v) if k in ids else v for k, v in dict(data).items()}

    for table in ("transactions", "postings", "lots", "earnings"):
        keyed = [tuple(named(v) if isinstance(v, str) else v for v in row)
                 for row in books[table]]  # fmt: skip
        books[table] = sorted(keyed, key=str)
    books["events"] = [(*row[:-1], ids_as_keys(row[-1])) for row in books["events"]]
    books["outbox"] = [(*row[:3], ids_as_keys(row[3])) for row in books["outbox"]]
    return books


_CLEAN: dict[str, tuple[dict[str, list[Any]], dict[str, Any], str]] = {}


def _clean(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, file: Path
) -> tuple[dict[str, list[Any]], dict[str, Any], str]:
    """The books, the summary and the rejects file of one uninterrupted import of the
    file into a fresh database (once per backend; on PostgreSQL it empties the scratch
    database, so the caller reads its own books first). Run in this process (the same
    command, without a process start) on the machine's clock, as the subprocesses are."""
    if backend not in _CLEAN:
        request.getfixturevalue("real_clock")
        clean_dir = tmp_path / "clean"
        clean_dir.mkdir()
        db = make_database(backend, request, clean_dir)
        rejects = clean_dir / "rejects.csv"
        _register("import")
        result = CliRunner().invoke(app, _command(file, db.url, rejects))
        assert result.exit_code == 0, result.output
        assert_invariants(db, "shop")
        _CLEAN[backend] = (_books(db), json.loads(result.stdout), rejects.read_text())
        db.dispose()
    return _CLEAN[backend]


def _rejected_rows(rejects: str) -> dict[int, str]:
    lines = list(csv.reader(rejects.splitlines()))
    assert lines[0] == ["row", "event_id", "code", "message"]
    numbers = [int(line[0]) for line in lines[1:]]
    assert len(numbers) == len(set(numbers)), "a row is listed twice"
    return {int(line[0]): line[2] for line in lines[1:]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_mid_import_then_rerun_gives_the_clean_books(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, events_file: Path
) -> None:
    crashed = make_database(backend, request, tmp_path)
    rejects = tmp_path / "rejects.csv"
    before = 0
    for at_least in (100, 360):  # two kills, the second in a re-run past its duplicates
        proc = _start(events_file, crashed.url, rejects)
        _wait_for(crashed, proc, at_least)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        ids = _recorded_ids(crashed)
        chunks = _committed_chunks(ids)
        assert at_least <= len(ids) and chunks < len(ROWS) / CHUNK, "killed mid-file"
        assert len(ids) > before
        before = len(ids)
        assert_invariants(crashed, "shop")
    final = _run(events_file, crashed.url, rejects)
    books = _books(crashed)
    assert_invariants(crashed, "shop")
    assert set(_rejected_rows(rejects.read_text()).items()) == set(BAD.items())
    crashed.dispose()

    clean_books, clean_summary, clean_rejects = _clean(backend, request, tmp_path, events_file)
    assert books == clean_books
    assert final["rows"] == len(ROWS)
    assert final["processed"] == clean_summary["processed"] - before
    assert final["processed"] + final["duplicates"] + final["rejected"] == len(ROWS)
    assert final["duplicates"] == before + clean_summary["duplicates"]
    assert final["rejected_by_code"] == clean_summary["rejected_by_code"]
    assert rejects.read_text() == clean_rejects


@pytest.mark.parametrize(
    ("backend", "signum"),
    [
        ("sqlite", signal.SIGINT),
        pytest.param("postgresql", signal.SIGINT, marks=pytest.mark.postgres),
        ("sqlite", signal.SIGTERM),
    ],
)
def test_ctrl_c_stops_after_the_chunk_says_what_is_done_and_rerun_completes(
    backend: str,
    signum: signal.Signals,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    events_file: Path,
) -> None:
    """Ctrl-C (SIGINT), and SIGTERM as a service manager sends it, stop the same way;
    the exit status says which (128 + the signal's number)."""
    db = make_database(backend, request, tmp_path)
    rejects = tmp_path / "rejects.csv"
    proc = _start(events_file, db.url, rejects)
    _wait_for(db, proc, 150)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    summary = json.loads(out)
    done = summary["rows"]
    assert done % CHUNK == 0 and 150 <= done < len(ROWS)
    assert summary["interrupted"] == {"rows_done": done, "last_row": done + 1,
                                      "rows_left": len(ROWS) - done}  # fmt: skip
    assert (f"Interrupted: the first {done} of {len(ROWS)} rows (up to row {done + 1}) are "
            f"done and committed ({summary['processed']} processed, "
            f"{summary['duplicates']} duplicates, {summary['rejected']} rejected); the "
            f"{len(ROWS) - done} rows after them were not imported. Run the same command "
            "again to import the rest: the rows already imported are counted as "
            "duplicates, nothing is applied twice.") in " ".join(err.split())  # fmt: skip
    assert _committed_chunks(_recorded_ids(db)) == done // CHUNK
    assert _recorded(db) == summary["processed"]
    assert_invariants(db, "shop")
    # the rejects file of the interrupted run: the bad rows among those done
    assert _rejected_rows(rejects.read_text()) == {n: c for n, c in BAD.items() if n <= done + 1}

    final = _run(events_file, db.url, rejects)
    books = _books(db)
    assert_invariants(db, "shop")
    db.dispose()
    clean_books, clean_summary, clean_rejects = _clean(backend, request, tmp_path, events_file)
    assert books == clean_books
    assert final["processed"] == clean_summary["processed"] - summary["processed"]
    assert final["processed"] + final["duplicates"] + final["rejected"] == len(ROWS)
    assert "interrupted" not in final
    assert rejects.read_text() == clean_rejects
