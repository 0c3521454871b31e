"""An import on a database that cannot be written (a full disk, a full database, an I/O
error) stops at once: no row is rejected for the database's failure, the chunks
committed before stay and are counted, the command exits with status 1 saying why and
which rows are done, and running it again once the database can be written imports the
rest, to the books of one clean import.

Real conditions on real SQLite files: the import run as a subprocess whose files may
not grow past a size (``ulimit -f``: ``RLIMIT_FSIZE``, ``SIGXFSZ`` ignored, so a write
past it fails as on a full disk), and in process a database whose connections may not
grow it past a number of pages (``PRAGMA max_page_count``: ``SQLITE_FULL``)."""

from __future__ import annotations

import csv
import json
import resource
import shutil
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, importer
from fidelite.processing.importer import FAILED, import_events, import_members
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import_crash import (
    BAD,
    CHUNK,
    FIDELITE,
    HEADER,
    PROGRAM,
    ROWS,
    _books,
    _committed_chunks,
    _recorded_ids,
)

pytestmark = pytest.mark.slow
RESUME = ("run the same command again to import the rest: the rows already imported "
          "are counted as duplicates, nothing is applied twice.")  # fmt: skip
GROWTH = 1_000_000  # bytes the limited import may write past the empty database's size


@pytest.fixture
def files(tmp_path: Path, sqlite_template: Path) -> Path:
    with (tmp_path / "events.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    (tmp_path / "program.yaml").write_text(PROGRAM)
    for name in ("clean.db", "full.db"):
        shutil.copy(sqlite_template, tmp_path / name)
    return tmp_path


def _import(
    directory: Path, db: str, rejects: str, limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    def limited() -> None:  # in the child, before exec
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [FIDELITE, "import", "events", str(directory / "events.csv"),
               "-p", str(directory / "program.yaml"), "--db", f"sqlite:///{directory / db}",
               "--rejects", str(directory / rejects), "--chunk", str(CHUNK),
               "-f", "json"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          preexec_fn=limited, check=False)  # fmt: skip


def _rejects(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def test_a_full_disk_stops_the_import_and_the_rerun_imports_the_rest(files: Path) -> None:
    clean = _import(files, "clean.db", "clean.rejects.csv")
    assert clean.returncode == 0, clean.stderr
    clean_rejects = _rejects(files / "clean.rejects.csv")
    assert {int(row[0]): row[2] for row in clean_rejects} == BAD

    size = (files / "full.db").stat().st_size
    full = _import(files, "full.db", "full.rejects.csv", limit=size + GROWTH)

    assert full.returncode == 1, (full.stdout, full.stderr)
    error = json.loads(full.stdout)["error"]
    done = error["rows_committed"]
    assert 0 < done < len(ROWS) and done % CHUNK == 0  # whole chunks, some left
    assert error["code"] == "database_unwritable"
    assert error["driver_code"] in ("SQLITE_FULL", "SQLITE_IOERR")  # (the WAL or the file)
    assert (error["last_row"], error["rows_left"]) == (done + 1, len(ROWS) - done)
    summary = error["summary"]
    bad_done = {number: code for number, code in BAD.items() if number <= done + 1}
    assert bad_done, "the limit must let a chunk with a bad row commit"
    assert summary["rows"] == done
    assert summary["rejected_by_code"] == {code: list(bad_done.values()).count(code)
                                           for code in sorted(set(bad_done.values()))}  # fmt: skip
    assert summary["interrupted"] == {"rows_done": done, "last_row": done + 1,
                                      "rows_left": len(ROWS) - done}  # fmt: skip
    assert summary["rejects_file"] == str(files / "full.rejects.csv")
    message = error["message"]
    assert message.startswith(f"The database could not be written: {error['reason']} "
                              f"({error['driver_code']}: ")  # fmt: skip
    assert (f"The import stopped: the first {done} of {len(ROWS)} rows (up to row {done + 1}) "
            f"are done and committed ({summary['processed']} processed, 0 duplicates, "
            f"{len(bad_done)} rejected); the {len(ROWS) - done} rows after them were not "
            "imported, and no row was rejected for this. "
            f"The {len(bad_done)} row(s) rejected before it are in "
            f"{files / 'full.rejects.csv'}. Once the database can be written again (free "
            f"disk space, ...), {RESUME}") in message  # fmt: skip
    assert message.endswith(RESUME)
    # the rejects file names the bad rows done, for their own reasons, none for the disk
    rejected = _rejects(files / "full.rejects.csv")
    assert {int(row[0]): row[2] for row in rejected} == bad_done
    assert all(row[2] != FAILED for row in rejected)
    # the books: the good rows of the committed chunks, nothing more, and they balance
    full_db = Database(f"sqlite:///{files / 'full.db'}")
    try:
        assert _committed_chunks(_recorded_ids(full_db)) == done // CHUNK
        assert_invariants(full_db)
    finally:
        full_db.dispose()

    again = _import(files, "full.db", "again.rejects.csv")
    assert again.returncode == 0, again.stderr
    rest = json.loads(again.stdout)
    whole = json.loads(clean.stdout)
    assert summary["processed"] + rest["processed"] == whole["processed"]  # each row once
    assert rest["duplicates"] == summary["processed"] + whole["duplicates"]
    assert _rejects(files / "again.rejects.csv") == clean_rejects
    books = []
    for name in ("clean.db", "full.db"):
        database = Database(f"sqlite:///{files / name}")
        try:
            books.append(_books(database))
        finally:
            database.dispose()
    assert books[0] == books[1]


# In process: a database SQLite may not grow past a number of pages (SQLITE_FULL).

NOW = datetime(2026, 11, 1, tzinfo=UTC)
MEMBERS = 1200


def _limited(path: Path, pages: int) -> Database:
    """The database at ``path``, its writes refused once it would pass ``pages`` pages
    more than it has now (``max_page_count``, set on each connection)."""
    db = Database(f"sqlite:///{path}")
    with db.read() as conn:
        count = int(conn.execute(text("PRAGMA page_count")).scalar_one())

    @event.listens_for(db.writer, "connect")
    def _cap(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {count + pages}")

    return db


def _members_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["member", "joined_at", "segments", "attributes"])
        for i in range(MEMBERS):
            attributes = json.dumps({"city": f"city-{i % 17}", "note": "x" * 120})
            writer.writerow([f"m{i}", f"2026-0{1 + i % 9}-01T10:00:00+00:00",
                             f"seg_{i % 5};vip" if i % 3 else "", attributes])  # fmt: skip
        writer.writerow(["", "", "", ""])  # a bad row, at the end: never reached
    return path


def test_a_full_database_stops_the_members_import(tmp_path: Path, sqlite_template: Path) -> None:
    for name in ("clean.db", "full.db"):
        shutil.copy(sqlite_template, tmp_path / name)
    file = _members_file(tmp_path / "members.csv")
    program = parse_program(PROGRAM)
    clean = Database(f"sqlite:///{tmp_path / 'clean.db'}")
    whole = import_members(EventProcessor(clean, program), file, now=NOW, chunk=100)
    assert (whole.created, len(whole.rejected)) == (MEMBERS, 1)

    full = _limited(tmp_path / "full.db", pages=60)
    told: list[tuple[int, int]] = []
    with pytest.raises(importer.DatabaseStopped) as stopped:
        import_members(EventProcessor(full, program), file, now=NOW, chunk=100,
                       committed=lambda rows, last: told.append((rows, last)))  # fmt: skip
    full.dispose()
    failure, report = stopped.value.failure, stopped.value.report
    assert failure.code == "SQLITE_FULL"
    assert failure.reason == "the disk or the database is full"
    assert str(failure) == ("the disk or the database is full "
                            "(SQLITE_FULL: database or disk is full)")  # fmt: skip
    done = report.rows
    assert 0 < done < MEMBERS and done % 100 == 0
    assert report.summary() == {"rows": done, "created": done, "updated": 0, "unchanged": 0,
                                "rejected": 0, "rejected_by_code": {}}  # fmt: skip
    assert told[-1] == (done, done + 1)
    unlimited = Database(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        with unlimited.read() as conn:
            stored = conn.execute(text("SELECT count(*) FROM member_states")).scalar_one()
        assert stored == done
        rest = import_members(EventProcessor(unlimited, program), file, now=NOW, chunk=100)
        assert (rest.created, rest.unchanged, len(rest.rejected)) == (MEMBERS - done, done, 1)
        assert _books(unlimited) == _books(clean)
    finally:
        unlimited.dispose()
        clean.dispose()


def test_a_full_database_stops_the_events_import(tmp_path: Path, sqlite_template: Path) -> None:
    for name in ("clean.db", "full.db"):
        shutil.copy(sqlite_template, tmp_path / name)
    file = tmp_path / "events.csv"
    with file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    program = parse_program(PROGRAM)
    clean = Database(f"sqlite:///{tmp_path / 'clean.db'}")
    whole = import_events(EventProcessor(clean, program), file, chunk=CHUNK)

    full = _limited(tmp_path / "full.db", pages=120)
    with pytest.raises(importer.DatabaseStopped) as stopped:
        import_events(EventProcessor(full, program), file, chunk=CHUNK)
    full.dispose()
    failure, report = stopped.value.failure, stopped.value.report
    assert failure.code == "SQLITE_FULL"
    assert isinstance(report, importer.ImportReport)
    done = report.rows
    assert 0 < done < len(ROWS) and done % CHUNK == 0
    assert report.last_row == done + 1
    assert {rejected.row: rejected.code for rejected in report.rejected} == {
        number: code for number, code in BAD.items() if number <= done + 1
    }
    unlimited = Database(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        assert _committed_chunks(_recorded_ids(unlimited)) == done // CHUNK
        rest = import_events(EventProcessor(unlimited, program), file, chunk=CHUNK)
        assert report.processed + rest.processed == whole.processed  # each row once
        assert rest.duplicates == report.processed + whole.duplicates
        assert [(r.row, r.code) for r in rest.rejected] == [(r.row, r.code) for r in whole.rejected]
        assert _books(unlimited) == _books(clean)
    finally:
        unlimited.dispose()
        clean.dispose()


def test_a_full_disk_stops_the_members_command(tmp_path: Path, sqlite_template: Path) -> None:
    shutil.copy(sqlite_template, tmp_path / "t.db")
    (tmp_path / "program.yaml").write_text(PROGRAM)
    file = _members_file(tmp_path / "members.csv")
    command = [FIDELITE, "import", "members", str(file), "-p", str(tmp_path / "program.yaml"),
               "--db", f"sqlite:///{tmp_path / 't.db'}", "--chunk", "100"]  # fmt: skip
    limit = (tmp_path / "t.db").stat().st_size + 300_000

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          preexec_fn=limited, check=False)  # fmt: skip
    assert full.returncode == 1, (full.stdout, full.stderr)
    line = " ".join(full.stderr.split())
    assert line.startswith("error [database_unwritable] The database could not be written: ")
    done = int(line.split("The import stopped: the first ")[1].split(" ")[0])
    assert 0 < done < MEMBERS and done % 100 == 0
    assert (f"the first {done} of {MEMBERS + 1} rows (up to row {done + 1}) are done and "
            f"committed ({done} created, 0 updated, 0 unchanged, 0 rejected); the "
            f"{MEMBERS + 1 - done} rows after them were not imported, and no row was "
            "rejected for this. Once the database can be written again (free disk space, "
            "...), run the same command again to import the rest: the rows already "
            "imported are counted as unchanged") in line  # fmt: skip
    assert not (tmp_path / "members.csv.rejects.csv").exists()

    again = subprocess.run([*command, "-f", "json"], capture_output=True, text=True,
                           timeout=300, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    rest = json.loads(again.stdout)
    assert (rest["created"], rest["unchanged"], rest["rejected"]) == (MEMBERS - done, done, 1)
