"""A refund a file lists before the row of its purchase (an export sorted by till, not
by time) is applied right after that row, in every run of the file: a clean import, a
re-run, and an import stopped (Ctrl-C) or killed anywhere and resumed all leave the
same books. It was refused ``unknown_purchase`` by the first run and applied by the
re-run (which found the purchase recorded), so re-running the file changed the points."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from fidelite.ledger import Ledger, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import ImportReport, RejectedRow, import_events
from fidelite.processing.tables import events as processed_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: first, on: [purchase], when: "member.purchases == 0", fixed: 100}
"""
HEADER = ["event_id", "type", "member", "at", "amount", "refund_of"]
ROWS = [
    ["r1", "refund", "ann", "2026-03-02T10:00:00+00:00", "20.00", "p1"],  # row 2
    ["p1", "purchase", "ann", "2026-03-01T10:00:00+00:00", "20.00", ""],  # row 3
    ["p2", "purchase", "ann", "2026-03-03T10:00:00+00:00", "10.00", ""],  # row 4
    ["r9", "refund", "cid", "2026-03-05T10:00:00+00:00", "5.00", "x9"],  # row 5: no x9
]
# p1 earns 20 + 100 (first purchase); r1, right after it, takes all 120 back and gives
# the purchase back (member.purchases is 0 again), so p2 earns 10 + 100.
ANN = 110
NO_X9 = RejectedRow(5, "r9", "unknown_purchase", "no purchase 'x9'")


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def available(db: Database, member: str = "ann") -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-04-01T00:00:00Z").available


def recorded(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(processed_events.c.event_id)).scalars())


def run(db: Database, file: Path, stop: Callable[[], bool] | None = None) -> ImportReport:
    return import_events(EventProcessor(db, parse_program(PROGRAM)), file, chunk=1, stop=stop)


def test_a_refund_before_its_purchase_is_applied_by_the_first_run_and_the_rerun_changes_nothing(
    pdb: Database, tmp_path: Path
) -> None:
    file = write_csv(tmp_path / "events.csv", ROWS)
    first = run(pdb, file)
    assert (first.processed, first.duplicates, first.refunds) == (3, 0, 1)
    assert first.rejected == [NO_X9]
    assert first.out_of_order == [] and first.refunds_waiting == []
    assert available(pdb) == ANN
    assert recorded(pdb) == {"r1", "p1", "p2"}
    again = run(pdb, file)
    assert (again.processed, again.duplicates, again.refunds) == (0, 3, 0)
    assert again.rejected == [NO_X9]
    assert available(pdb) == ANN
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_an_import_stopped_after_any_chunk_and_resumed_leaves_the_books_of_a_clean_one(
    pdb: Database, tmp_path: Path, chunks: int
) -> None:
    file = write_csv(tmp_path / "events.csv", ROWS)
    asked: list[int] = []

    def stop() -> bool:  # asked before each chunk (one row each): yes after `chunks`
        asked.append(1)
        return len(asked) == chunks + 1

    stopped = run(pdb, file, stop)
    assert stopped.stopped and stopped.rows == chunks
    # r1 waits for p1's row (row 3): nothing of it is written before
    assert stopped.refunds_waiting == ([2] if chunks == 1 else [])
    assert stopped.summary().get("refunds_waiting") == (1 if chunks == 1 else None)
    assert recorded(pdb) == [set(), {"p1", "r1"}, {"p1", "r1", "p2"}][chunks - 1]
    resumed = run(pdb, file)
    assert resumed.rejected == [NO_X9]
    assert resumed.processed + resumed.duplicates == 3
    assert available(pdb) == ANN
    assert recorded(pdb) == {"r1", "p1", "p2"}
    assert_invariants(pdb, "shop")


def test_a_refund_whose_purchase_is_in_no_file_yet_is_applied_by_a_later_import(
    pdb: Database, tmp_path: Path
) -> None:
    refunds = write_csv(tmp_path / "refunds.csv", [ROWS[3]])
    assert run(pdb, refunds).rejected == [RejectedRow(2, "r9", "unknown_purchase",
                                                      "no purchase 'x9'")]  # fmt: skip
    late = ["x9", "purchase", "cid", "2026-03-04T10:00:00+00:00", "30.00", ""]
    assert run(pdb, write_csv(tmp_path / "purchases.csv", [late])).processed == 1
    assert available(pdb, "cid") == 130
    again = run(pdb, refunds)
    assert (again.processed, again.refunds, again.rejected) == (1, 1, [])
    assert available(pdb, "cid") == 130 - 21  # 5/30 of the 130 points, rounded half up


def test_a_parquet_file_with_integer_ids_is_read_the_same_way(
    pdb: Database, tmp_path: Path
) -> None:
    file = tmp_path / "events.parquet"
    table = pa.table({
        "event_id": pa.array([11, 21, 22], pa.int64()),
        "type": ["refund", "purchase", "purchase"],
        "member": ["ann", "ann", "ann"],
        "at": [row[3] for row in ROWS[:3]],
        "amount": ["20.00", "20.00", "10.00"],
        "refund_of": pa.array([21, None, None], pa.int64()),
    })  # fmt: skip
    pq.write_table(table, file)
    first = run(pdb, file)
    assert (first.processed, first.refunds, first.rejected) == (3, 1, [])
    assert available(pdb) == ANN
    again = run(pdb, file)
    assert (again.duplicates, again.rejected) == (3, [])
    assert available(pdb) == ANN


# r1 names p1, listed twice after it: first with an amount that is no number (refused),
# then as it should be; a duplicate of p1 follows. r1 waits for the last row of p1's id
# (row 5) whatever the fate of the rows before, in every run.
TWICE = [
    ["r1", "refund", "ann", "2026-03-02T10:00:00+00:00", "20.00", "p1"],  # row 2
    ["p1", "purchase", "ann", "2026-03-01T10:00:00+00:00", "abc", ""],  # row 3: refused
    ["p1", "purchase", "ann", "2026-03-01T10:00:00+00:00", "20.00", ""],  # row 4
    ["p1", "purchase", "ann", "2026-03-01T10:00:00+00:00", "20.00", ""],  # row 5: again
    ["p2", "purchase", "ann", "2026-03-03T10:00:00+00:00", "10.00", ""],  # row 6
]
ABC = RejectedRow(3, "p1", "invalid_row", "amount: 'abc' is not a number; write digits with a "
                  "point as the decimal separator (e.g. 12.50)")  # fmt: skip


def test_a_refund_waits_for_the_last_row_of_its_purchase_id_whatever_the_rows_before_it(
    pdb: Database, tmp_path: Path
) -> None:
    file = write_csv(tmp_path / "events.csv", TWICE)
    first = run(pdb, file)
    assert (first.processed, first.duplicates, first.refunds) == (3, 1, 1)
    assert first.rejected == [ABC] and first.refunds_waiting == []
    assert available(pdb) == ANN  # as ROWS: p1 earns 120, r1 takes it back, p2 110
    assert recorded(pdb) == {"r1", "p1", "p2"}
    again = run(pdb, file)
    assert (again.processed, again.duplicates, again.refunds) == (0, 4, 0)
    assert again.rejected == [ABC]
    assert available(pdb) == ANN
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("chunks", [1, 2, 3, 4])
def test_a_run_stopped_between_the_rows_of_the_purchase_id_and_resumed_agrees(
    pdb: Database, tmp_path: Path, chunks: int
) -> None:
    file = write_csv(tmp_path / "events.csv", TWICE)
    asked: list[int] = []

    def stop() -> bool:  # asked before each chunk (one row each): yes after `chunks`
        asked.append(1)
        return len(asked) == chunks + 1

    stopped = run(pdb, file, stop)
    assert stopped.stopped and stopped.rows == chunks
    assert stopped.refunds_waiting == ([2] if chunks < 4 else [])
    assert recorded(pdb) == [set(), set(), {"p1"}, {"p1", "r1"}][chunks - 1]
    resumed = run(pdb, file)
    assert resumed.rejected == [ABC]
    assert (resumed.processed, resumed.duplicates) == [(3, 1), (3, 1), (2, 2), (1, 3)][chunks - 1]
    assert available(pdb) == ANN
    assert recorded(pdb) == {"r1", "p1", "p2"}
    assert_invariants(pdb, "shop")
