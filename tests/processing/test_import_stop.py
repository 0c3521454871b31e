"""Stopping an import between chunks (what Ctrl-C does in `fidelite import events`): the
report counts exactly the rows recorded, and a re-run completes the file. The process
level (a real SIGINT, kill -9) is in test_import_crash.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from fidelite.cli.interrupt import stop_on_interrupt
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.processing.tables import events as processed_events
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import import GOOD, PROGRAM, write_csv

ROWS = [*GOOD, ["e4", "purchase", "ann", "2026-11-04T10:00:00+01:00", "bad", ""],
        ["e5", "purchase", "ann", "2026-11-05T10:00:00+01:00", "7.00", ""]]  # fmt: skip


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
