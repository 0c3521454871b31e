"""Stopping an import between chunks (what Ctrl-C does in `fidelite import events`): the
report counts exactly the rows recorded, and a re-run completes the file. The process
level (a real SIGINT, kill -9) is in test_import_crash.py."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fidelite.cli import imports
from fidelite.cli.interrupt import stop_on_interrupt
from fidelite.cli.main import _register, app
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, importer
from fidelite.processing.importer import ImportReport, import_events
from fidelite.processing.tables import events as processed_events
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import import GOOD, PROGRAM, write_csv

ROWS = [*GOOD, ["e4", "purchase", "ann", "2026-11-04T10:00:00+01:00", "bad", ""],
        ["e5", "purchase", "ann", "2026-11-05T10:00:00+01:00", "7.00", ""]]  # fmt: skip
REJECTED_E4 = ("5,e4,invalid_row,amount: 'bad' is not a number; write digits with a point "
               "as the decimal separator (e.g. 12.50)")  # fmt: skip


def _recorded(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(processed_events.c.event_id)).scalars())


def test_stop_ends_the_import_between_chunks_and_a_rerun_completes_it(
    pdb: Database, tmp_path: Path
) -> None:
    file = write_csv(tmp_path / "events.csv", ROWS)
    asked: list[int] = []

    def stop() -> bool:  # asked before each chunk: yes before the third
        asked.append(1)
        return len(asked) == 3

    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, chunk=2, stop=stop)
    assert (report.stopped, report.rows, report.last_row, report.processed) == (True, 4, 5, 3)
    assert [r.row for r in report.rejected] == [5]
    assert _recorded(pdb) == {"e1", "e2", "e3"}
    assert_invariants(pdb, "shop")
    again = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, chunk=2)
    assert (again.stopped, again.rows, again.last_row) == (False, 5, 6)
    assert (again.processed, again.duplicates, [r.row for r in again.rejected]) == (1, 3, [5])
    assert _recorded(pdb) == {"e1", "e2", "e3", "e5"}
    assert_invariants(pdb, "shop")


def test_stop_asked_once_the_file_is_done_is_no_stop(pdb: Database, tmp_path: Path) -> None:
    file = write_csv(tmp_path / "events.csv", GOOD)
    asked: list[int] = []

    def stop() -> bool:  # yes from the second question on: no chunk is left by then
        asked.append(1)
        return len(asked) > 1

    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, chunk=3, stop=stop)
    assert (report.stopped, report.rows, report.last_row, report.processed) == (False, 3, 4, 3)
    assert len(asked) == 1


def test_ctrl_c_sets_the_flag_and_a_second_one_interrupts() -> None:
    before = signal.getsignal(signal.SIGINT)
    with stop_on_interrupt("the chunk in progress") as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_stops_like_ctrl_c_with_its_own_exit_status() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_interrupt("the chunk in progress") as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop() and stop.exit_status == 143
        with pytest.raises(KeyboardInterrupt):  # a second signal, whichever: abort
            os.kill(os.getpid(), signal.SIGINT)
        assert stop.exit_status == 143
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_held_signal_is_noted_and_keeps_the_first_signals_status() -> None:
    with stop_on_interrupt("the chunk in progress") as stop:
        stop.hold("finishing")
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop() and stop.exit_status == 130


def test_a_second_ctrl_c_aborts_at_once_and_says_what_was_committed(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two Ctrl-C arrive as the import asks whether to stop before its second chunk
    (the first chunk committed): a real SIGINT each, so the command's own handler and
    its KeyboardInterrupt path run, not a stand-in."""
    file = write_csv(tmp_path / "events.csv", ROWS)
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    real = imports.import_events

    def interrupted_before_chunk_2(*args: Any, **kwargs: Any) -> ImportReport:
        stop, asked = kwargs["stop"], []

        def twice() -> bool:
            asked.append(1)
            if len(asked) == 2:
                os.kill(os.getpid(), signal.SIGINT)  # asks to stop after the chunk
                os.kill(os.getpid(), signal.SIGINT)  # does not wait: KeyboardInterrupt
            return bool(stop())

        return real(*args, **{**kwargs, "stop": twice})

    monkeypatch.setattr(imports, "import_events", interrupted_before_chunk_2)
    _register("import")
    command = ["import", "events", str(file), "--program", str(program), "--db", pdb.url,
               "--chunk", "2", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 130
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["rows_committed"], error["last_row"]) == ("import_aborted", 2, 3)
    assert "Traceback" not in result.stderr
    assert (
        "Aborted: the first 2 of 5 rows (up to row 3) committed; the chunk in progress was "
        "rolled back (or committed whole, had it just finished). No rejects file was "
        "written. Run the same command again to import the rest: the rows already imported "
        "are counted as duplicates, nothing is applied twice."
    ) in " ".join(result.stderr.split())
    assert _recorded(pdb) == {"e1", "e2"}
    assert not file.with_name("events.csv.rejects.csv").exists()
    assert_invariants(pdb, "shop")


def _cli(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrap: Any
) -> tuple[Any, Path]:
    """Run `import events` on ROWS in chunks of 2 (JSON), ``wrap`` changing the keyword
    arguments the command gives the importer."""
    file = write_csv(tmp_path / "events.csv", ROWS)
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    real = imports.import_events
    monkeypatch.setattr(imports, "import_events", lambda *a, **k: real(*a, **wrap(k)))
    _register("import")
    command = ["import", "events", str(file), "--program", str(program), "--db", pdb.url,
               "--chunk", "2", "--format", "json"]  # fmt: skip
    return CliRunner().invoke(app, command), file


def _ctrl_c_twice() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGINT)


def test_a_second_ctrl_c_after_a_chunk_committed_counts_the_chunk_whole(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Ctrl-C while the first chunk (rows 2-3, committed) is shown row by row: the
    message counts both rows, not the one shown so far."""

    def wrap(kwargs: dict[str, Any]) -> dict[str, Any]:
        progress = kwargs["progress"]

        def shown(row: int) -> None:
            progress(row)
            if row == 2:
                _ctrl_c_twice()

        return {**kwargs, "progress": shown}

    result, file = _cli(pdb, tmp_path, monkeypatch, wrap)
    assert result.exit_code == 130
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["rows_committed"], error["last_row"]) == ("import_aborted", 2, 3)
    assert " ".join(result.stderr.split()) == (
        "Interrupted: stopping after the chunk in progress (2 rows at most) (Ctrl-C again to "
        "abort it) Aborted: the first 2 of 5 rows (up to row 3) committed; the chunk in "
        "progress was rolled back (or committed whole, had it just finished). No rejects "
        "file was written. Run the same command again to import the rest: the rows already "
        "imported are counted as duplicates, nothing is applied twice."
    )
    assert _recorded(pdb) == {"e1", "e2"}
    assert not file.with_name("events.csv.rejects.csv").exists()
    assert_invariants(pdb, "shop")


def test_a_second_ctrl_c_after_the_last_chunk_lets_the_import_complete(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Ctrl-C as the planner statistics are refreshed, every row committed: nothing
    is left to abort, so the import ends complete (summary, rejects file, status 0)."""
    real_finish = importer.StatisticsRefresh.finish

    def finish(self: importer.StatisticsRefresh) -> None:
        _ctrl_c_twice()
        real_finish(self)

    monkeypatch.setattr(importer.StatisticsRefresh, "finish", finish)
    result, file = _cli(pdb, tmp_path, monkeypatch, lambda kwargs: kwargs)
    assert result.exit_code == 0
    rejects = file.with_name("events.csv.rejects.csv")
    assert json.loads(result.stdout) == {
        "rows": 5, "processed": 4, "duplicates": 0, "rejected": 1,
        "rejected_by_code": {"invalid_row": 1}, "refunds": 0, "points_written_off": {},
        "points_into_debt": {}, "points_already_expired": {}, "rejects_file": str(rejects),
    }  # fmt: skip
    held = (
        "Interrupted: every row is committed: finishing the import (statistics, summary, "
        "rejects file); it ends complete"
    )
    assert " ".join(result.stderr.split()) == f"{held} {held}"
    assert rejects.read_text().splitlines() == [
        "row,event_id,code,message", REJECTED_E4
    ]  # fmt: skip
    assert _recorded(pdb) == {"e1", "e2", "e3", "e5"}
    assert_invariants(pdb, "shop")


def test_ctrl_c_while_the_rejects_are_written_waits_for_them(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import stopped by a Ctrl-C before its third chunk; two more as its rejects
    file is written: the file is written whole, the summary printed, status 130."""

    def wrap(kwargs: dict[str, Any]) -> dict[str, Any]:
        stop, asked = kwargs["stop"], []

        def ctrl_c() -> bool:
            asked.append(1)
            if len(asked) == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return bool(stop())

        return {**kwargs, "stop": ctrl_c}

    real_write = imports.write_rejects

    def write_rejects(*args: Any, **kwargs: Any) -> None:
        _ctrl_c_twice()
        real_write(*args, **kwargs)

    monkeypatch.setattr(imports, "write_rejects", write_rejects)
    result, file = _cli(pdb, tmp_path, monkeypatch, wrap)
    assert result.exit_code == 130
    rejects = file.with_name("events.csv.rejects.csv")
    assert json.loads(result.stdout) == {
        "rows": 4, "processed": 3, "duplicates": 0, "rejected": 1,
        "rejected_by_code": {"invalid_row": 1}, "refunds": 0, "points_written_off": {},
        "points_into_debt": {}, "points_already_expired": {},
        "interrupted": {"rows_done": 4, "last_row": 5, "rows_left": 1},
        "rejects_file": str(rejects),
    }  # fmt: skip
    held = (
        "Interrupted: the import is stopped: writing the summary and rejects file of the rows done"
    )
    assert " ".join(result.stderr.split()) == (
        "Interrupted: stopping after the chunk in progress (2 rows at most) (Ctrl-C again to "
        f"abort it) {held} {held} Interrupted: the first 4 of 5 rows (up to row 5) are done "
        "and committed (3 processed, 0 duplicates, 1 rejected); the 1 rows after them were "
        "not imported. Run the same command again to import the rest: the rows already "
        "imported are counted as duplicates, nothing is applied twice."
    )
    assert rejects.read_text().splitlines() == [
        "row,event_id,code,message", REJECTED_E4
    ]  # fmt: skip
    assert _recorded(pdb) == {"e1", "e2", "e3"}
