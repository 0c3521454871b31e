"""Bulk import: idempotent by event id, bad rows reported by row number."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: signup, on: [signup], fixed: 100}
"""

HEADER = ["event_id", "type", "member", "at", "amount", "items"]
GOOD = [
    ["e1", "purchase", "ann", "2026-11-02T10:00:00+01:00", "12.50", ""],
    ["e2", "signup", "bob", "2026-11-02T11:00:00+01:00", "", ""],
    ["e3", "purchase", "bob", "2026-11-03T10:00:00+01:00", "30.00",
     json.dumps([{"sku": "A", "quantity": 2, "price": "15.00"}])],
]  # fmt: skip


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def points(db: Database, member: str) -> int:
    from fidelite.ledger import Ledger

    return Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z").available


def test_import_same_file_twice_posts_once(pdb: Database, tmp_path: Path) -> None:
    file = write_csv(tmp_path / "events.csv", GOOD)
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    first = import_events(processor, file)
    second = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    no_refunds = {"refunds": 0, "points_written_off": {}, "points_into_debt": {},
                  "points_already_expired": {}}  # fmt: skip
    assert first.summary() == {
        "rows": 3, "processed": 3, "duplicates": 0, "rejected": 0, "rejected_by_code": {},
        **no_refunds,
    }  # fmt: skip
    assert second.summary() == {
        "rows": 3, "processed": 0, "duplicates": 3, "rejected": 0, "rejected_by_code": {},
        **no_refunds,
    }  # fmt: skip
    assert (points(pdb, "ann"), points(pdb, "bob")) == (12, 130)
    assert_invariants(pdb, "shop")


def test_import_reports_bad_rows_and_keeps_good_ones(pdb: Database, tmp_path: Path) -> None:
    rows = [
        GOOD[0],
        ["e4", "purchase", "ann", "2026-11-02T10:00:00", "5.00", ""],  # no offset
        ["e5", "purchase", "ann", "2026-11-02T10:00:00+01:00", "-3", ""],
        ["e6", "purchase", "ann", "2026-11-02T10:00:00+01:00", "5.00", "[{"],
        ["e7", "refund", "ann", "2026-11-04T10:00:00+01:00", "5.00", ""],  # no refund_of
        GOOD[2],
    ]
    file = write_csv(tmp_path / "events.csv", rows)
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    assert (report.processed, report.duplicates) == (2, 0)
    assert [(r.row, r.key, r.code) for r in report.rejected] == [
        (3, "e4", "invalid_row"),
        (4, "e5", "invalid_row"),
        (5, "e6", "invalid_row"),
        (6, "e7", "invalid_row"),
    ]
    assert report.rejected[0].message == (
        "at: needs a UTC offset (e.g. +00:00): '2026-11-02T10:00:00'"
    )
    assert report.rejected[1].message == (
        "amount: '-3' is negative; an amount is 0 or more (a refund is a row of type refund, "
        "with a positive amount)"
    )
    assert report.rejected[2].message.startswith("items: invalid JSON")
    assert report.rejected[3].message == (
        "(row): a refund event needs 'refund_of' (the purchase event id)"
    )
    assert (points(pdb, "ann"), points(pdb, "bob")) == (12, 30)


def test_import_parquet_file(pdb: Database, tmp_path: Path) -> None:
    columns = list(zip(*GOOD, strict=True))
    table = pa.table({name: list(values) for name, values in zip(HEADER, columns, strict=True)})
    pq.write_table(table, tmp_path / "events.parquet")
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), tmp_path / "events.parquet")
    assert (report.processed, len(report.rejected)) == (3, 0)
    assert points(pdb, "bob") == 130


def test_cli_import_writes_rejects_file(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = write_csv(tmp_path / "events.csv", [GOOD[0], ["", "purchase", "ann", "x", "1", ""]])
    _register()
    args = ["import", "events", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["rejected"]) == (1, 1)
    with (tmp_path / "events.csv.rejects.csv").open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["row"], r["code"]) for r in rejects] == [("3", "invalid_row")]
    assert rejects[0]["message"] == (
        "event_id: Field required; at: 'x' is not an ISO 8601 date-time (date, T, time and "
        "UTC offset: 2026-10-02T10:00:00+02:00)"
    )


def test_cli_import_leaves_only_this_runs_rejects(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    bad = ["e9", "purchase", "ann", "2026-11-04 10:00", "5", ""]
    file = write_csv(tmp_path / "events.csv", [GOOD[0], bad])
    rejects = tmp_path / "events.csv.rejects.csv"
    _register()
    args = ["import", "events", str(file), "--program", str(program),
            "--db", f"sqlite:///{tmp_path / 'shop.db'}", "--format", "json"]  # fmt: skip

    def run(*extra: str) -> dict[str, object]:
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    first = run()
    assert (first["rejected"], first["rejects_file"]) == (1, str(rejects))
    assert rejects.read_text(encoding="utf-8").splitlines()[1].startswith("3,e9,invalid_row,")
    write_csv(file, [GOOD[0], [*bad[:3], "2026-11-04T10:00:00+01:00", *bad[4:]]])  # fixed
    fixed = run()
    assert (fixed["processed"], fixed["duplicates"], fixed["rejected"]) == (1, 1, 0)
    assert fixed["rejects_file"] is None
    assert not rejects.exists()  # the first run's error is not left behind
    # a chosen path too: written when rows are rejected, removed when none are
    chosen = tmp_path / "bad-rows.csv"
    chosen.write_text("row,event_id,code,message\n3,e9,invalid_row,stale\n", encoding="utf-8")
    assert run("--rejects", str(chosen))["rejects_file"] is None
    assert not chosen.exists()
    # the rejects path cannot be the file being imported
    same = CliRunner().invoke(app, [*args, "--rejects", str(file)])
    assert same.exit_code == 1
    assert json.loads(same.stdout)["error"]["code"] == "invalid_rejects_path"
    assert file.exists()


def test_import_in_chunks_commits_good_rows_around_rejected_ones(
    pdb: Database, tmp_path: Path
) -> None:
    rows = [
        GOOD[0],
        ["r1", "refund", "ann", "2026-11-02T12:00:00+01:00", "5.00", ""],  # no refund_of
        GOOD[1],
        ["r2", "refund", "cid", "2026-11-04T12:00:00+01:00", "5.00", ""],
        GOOD[2],
    ]
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    report = import_events(processor, write_csv(tmp_path / "mixed.csv", rows), chunk=2)
    assert (report.processed, report.duplicates) == (3, 0)
    assert [r.row for r in report.rejected] == [3, 5]
    assert (points(pdb, "ann"), points(pdb, "bob")) == (12, 130)
    again = import_events(EventProcessor(pdb, parse_program(PROGRAM)), tmp_path / "mixed.csv",
                          chunk=3)  # fmt: skip
    assert (again.processed, again.duplicates, len(again.rejected)) == (0, 3, 2)
    assert (points(pdb, "ann"), points(pdb, "bob")) == (12, 130)
    assert_invariants(pdb)


@pytest.mark.parametrize(("flag", "expected"), [("--announce", 2), ("--no-announce", 0)])
def test_cli_import_announces_unless_told_not_to(tmp_path: Path, flag: str, expected: int) -> None:
    """A new member's purchase announces member.created and points.earned, or nothing."""
    from sqlalchemy import func, select

    from fidelite.webhooks.tables import outbox

    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = write_csv(tmp_path / "events.csv", [GOOD[0]])
    _register()
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    args = ["import", "events", str(file), "--program", str(program), "--db", url, flag]
    assert CliRunner().invoke(app, args).exit_code == 0
    db = Database(url)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == expected
    db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("pdb", ["postgresql"], indirect=True)
def test_import_refreshes_planner_statistics_as_tables_grow(pdb: Database, tmp_path: Path) -> None:
    """A large import analyses the tables it reads (after 2,000 rows, then at every
    doubling, and at the end), so PostgreSQL plans for their size, autovacuum or not."""
    from sqlalchemy import text

    rows = [[f"e{i}", "purchase", f"m{i % 300}", "2026-11-02T10:00:00+01:00", "3", ""]
            for i in range(2500)]  # fmt: skip
    with pdb.write() as conn:
        conn.execute(text("SELECT pg_stat_reset()"))
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)),
                           write_csv(tmp_path / "big.csv", rows))  # fmt: skip
    assert report.processed == 2500
    with pdb.read() as conn:
        counts = dict(conn.execute(text(
            "SELECT relname, analyze_count FROM pg_stat_user_tables "
            "WHERE relname IN ('processed_events', 'event_earnings', 'accounts')"
        )).all())  # fmt: skip
    assert counts == {"processed_events": 2, "event_earnings": 2, "accounts": 2}


@pytest.mark.parametrize("chunk", [1000, 1])
def test_import_rejects_a_row_whose_event_id_is_recorded_for_another_event(
    pdb: Database, tmp_path: Path, chunk: int
) -> None:
    """As the API answers 409: the id repeated with another member and amount is no
    duplicate; the same row repeated is one, in the same chunk or a later one."""
    rows = [GOOD[0], ["e1", "purchase", "bob", "2026-11-02T10:00:00+01:00", "99.00", ""],
            GOOD[0], GOOD[1]]  # fmt: skip
    file = write_csv(tmp_path / "events.csv", rows)
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, chunk=chunk)
    assert (report.processed, report.duplicates) == (2, 1)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "e1", "event_id_conflict",
         "event 'e1' is recorded with other values (member 'ann' recorded, 'bob' sent; "
         "amount '12.5000' recorded, '99.0000' sent): a new event needs a new id; to repeat "
         "the event, send it as it was first sent"),
    ]  # fmt: skip
    assert (points(pdb, "ann"), points(pdb, "bob")) == (12, 100)
    again = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, chunk=chunk)
    assert (again.processed, again.duplicates, len(again.rejected)) == (0, 3, 1)
    assert (points(pdb, "ann"), points(pdb, "bob")) == (12, 100)
    assert_invariants(pdb, "shop")
