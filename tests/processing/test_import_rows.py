"""Bulk import: a row that cannot be applied is rejected alone, its neighbours import.

Absurd amounts are refused at validation (they used to crash the chunk's tier
computation, or be accepted one at a time and break the member's later imports); a
row the database itself refuses is retried alone and reported with the exception.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fidelite.ledger import Ledger, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.processing.rows import ImportFileError
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
"""
HEADER = ["event_id", "type", "member", "at", "amount", "items"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def at(day: int) -> str:
    return f"2026-11-{day:02d}T10:00:00+01:00"


def basket(quantity: int, price: str) -> str:
    return json.dumps([{"sku": "A", "quantity": quantity, "price": price}])


def points(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z").available


def recorded(db: Database) -> list[str]:
    with db.read() as conn:
        return list(
            conn.execute(text("SELECT event_id FROM processed_events ORDER BY event_id")).scalars()
        )


ABSURD = [
    ["e1", "purchase", "ann", at(2), "10", ""],
    ["e2", "purchase", "ann", at(3), "1e30", ""],
    ["e3", "purchase", "ann", at(4), "5", basket(1, "1e30")],
    ["e4", "purchase", "ann", at(5), "5", basket(10**16, "0")],
    ["e5", "purchase", "ann", at(6), "5", basket(2, "6000000000")],
    ["e6", "purchase", "ann", at(7), "10000000000.0001", ""],
    ["e7", "purchase", "ann", at(8), "20", ""],
]


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "one-by-one"])
def test_import_rejects_absurd_amounts_and_keeps_the_good_rows(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = write_csv(tmp_path / "events.csv", ABSURD)
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    report = import_events(processor, file, batch=batch)
    assert (report.rows, report.processed, report.duplicates) == (7, 2, 0)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "e2", "invalid_row", "amount: Input should be less than or equal to 10000000000"),
        (4, "e3", "invalid_row",
         "items.0.price: Input should be less than or equal to 10000000000"),
        (5, "e4", "invalid_row",
         "items.0.quantity: Input should be less than or equal to 1000000000000000"),
        (6, "e5", "invalid_row",
         "items.0: line total (price x quantity) 12000000000 is above 10000000000"),
        (7, "e6", "invalid_row", "amount: Input should be less than or equal to 10000000000"),
    ]  # fmt: skip
    assert points(pdb, "ann") == 30
    assert processor.member_tier("ann") == "bronze"  # 30 spent: no upgrade
    assert recorded(pdb) == ["e1", "e7"]
    # The member's later imports read their tier window without trouble.
    later = write_csv(tmp_path / "later.csv", [["e8", "purchase", "ann", at(9), "80", ""]])
    assert import_events(EventProcessor(pdb, parse_program(PROGRAM)), later).processed == 1
    assert processor.member_tier("ann") == "silver"  # 10 + 20 + 80
    assert_invariants(pdb, "shop")


@pytest.fixture
def refusing_db(pdb: Database) -> Iterator[Database]:
    """The database, with a trigger refusing to record event ``boom`` (a failure the
    processor does not expect, for one row only); dropped afterwards."""
    if pdb.is_postgres:
        create = [
            "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.event_id = 'boom' THEN RAISE EXCEPTION 'boom refused by a trigger'; "
            "END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON processed_events "
            "FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
        ]
        drop = ["DROP TRIGGER refuse_boom ON processed_events", "DROP FUNCTION refuse_boom()"]
    else:
        create = [
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON processed_events "
            "WHEN NEW.event_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom refused by a trigger'); "
            "END"
        ]
        drop = ["DROP TRIGGER refuse_boom"]
    with pdb.write() as conn:
        for statement in create:
            conn.execute(text(statement))
    try:
        yield pdb
    finally:
        with pdb.write() as conn:
            for statement in drop:
                conn.execute(text(statement))


@pytest.mark.parametrize(
    ("batch", "chunk"), [(True, 1000), (True, 2), (False, 1000)], ids=["batch", "chunk2", "one"]
)
def test_import_turns_a_row_failing_in_the_database_into_a_reject(
    refusing_db: Database, tmp_path: Path, batch: bool, chunk: int
) -> None:
    rows = [
        ["e1", "purchase", "ann", at(2), "10", ""],
        ["boom", "purchase", "bob", at(2), "7", ""],
        ["e3", "purchase", "cid", at(2), "5", ""],
        ["e4", "purchase", "ann", at(3), "1", ""],
    ]
    file = write_csv(tmp_path / "events.csv", rows)
    processor = EventProcessor(refusing_db, parse_program(PROGRAM))
    report = import_events(processor, file, batch=batch, chunk=chunk)
    assert (report.rows, report.processed, report.duplicates) == (4, 3, 0)
    [failed] = report.rejected
    kind = "ProgrammingError" if refusing_db.is_postgres else "IntegrityError"
    assert (failed.row, failed.key, failed.code) == (3, "boom", "processing_failed")
    assert failed.message.startswith(f"{kind}: ")
    assert "boom refused by a trigger" in failed.message
    assert "\n" not in failed.message
    assert (points(refusing_db, "ann"), points(refusing_db, "cid")) == (11, 5)
    assert recorded(refusing_db) == ["e1", "e3", "e4"]
    with refusing_db.read() as conn:
        members = conn.execute(text("SELECT ref FROM members ORDER BY ref")).scalars().all()
    assert members == ["ann", "cid"]  # nothing of the failed row, not even its member
    assert_invariants(refusing_db, "shop")


def excel_semicolons(path: Path, prefix: str, rows: list[list[str]], first: str = "") -> Path:
    """``rows`` as Excel in French saves them (``;`` separated), after ``first``."""
    lines = [";".join(HEADER)]
    lines += [";".join(cell.replace("{id}", prefix) for cell in row) for row in rows]
    path.write_text(first + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


SEMICOLON_ROWS = [
    ["{id}1", "purchase", "{id}-ann", at(2), "10", basket(1, "10")],
    ["{id}2", "purchase", "{id}-ann", at(3), "12,50", ""],
    ["{id}3", "purchase", "{id}-ann", at(4), "20", ""],
]


def test_import_reads_excel_sep_line_as_the_separator_not_the_header(
    pdb: Database, tmp_path: Path
) -> None:
    """Excel's ``sep=;`` first line (and blank lines before the header) is skipped and
    names the separator; the header stays row 1, so the rejects' numbers are the same
    as for the file without that line."""
    plain = excel_semicolons(tmp_path / "plain.csv", "a", SEMICOLON_ROWS)
    excel = excel_semicolons(tmp_path / "excel.csv", "b", SEMICOLON_ROWS, "sep=;\r\n\r\n")
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    reports = [import_events(processor, file) for file in (plain, excel)]
    for prefix, report in zip("ab", reports, strict=True):
        assert (report.rows, report.processed, report.duplicates) == (3, 2, 0)
        assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
            (
                3,
                f"{prefix}2",
                "invalid_row",
                "amount: '12,50' is not a number; use a point as the decimal separator (12.50)",
            ),
        ]
        assert points(pdb, f"{prefix}-ann") == 30
    assert recorded(pdb) == ["a1", "a3", "b1", "b3"]
    assert_invariants(pdb, "shop")


def test_import_refuses_a_sep_line_without_header(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "events.csv"
    file.write_text("sep=;\r\n\r\n", encoding="utf-8")
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    with pytest.raises(ImportFileError) as caught:
        import_events(processor, file)
    assert str(caught.value) == f"{file}: line 2: no header after the line 'sep=;'"
    assert recorded(pdb) == []


def test_import_lists_every_problem_of_a_rejected_event_row(pdb: Database, tmp_path: Path) -> None:
    """A rejected row names each of its bad columns, in column order, so one pass fixes
    it (as the members import tells them); its neighbours import."""
    file = write_csv(tmp_path / "events.csv", [
        ["e1", "purchase", "ann", at(2), "10", ""],
        ["e2", "purchase", "ann", "yesterday", "12,50", "[{sku: A}]"],
        ["e3", "purchase", "ann", at(4), "20", ""],
    ])  # fmt: skip
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    report = import_events(processor, file)
    assert (report.rows, report.processed) == (3, 2)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "e2", "invalid_row",
         "at: 'yesterday' is not an ISO 8601 date-time (date, T, time and UTC offset: "
         "2026-10-02T10:00:00+02:00); "
         "amount: '12,50' is not a number; use a point as the decimal separator (12.50); "
         "items: invalid JSON (Expecting property name enclosed in double quotes)"),
    ]  # fmt: skip
    assert recorded(pdb) == ["e1", "e3"]
    assert points(pdb, "ann") == 30
