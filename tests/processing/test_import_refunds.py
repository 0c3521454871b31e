"""Bulk import of refunds: what a refund could not take back from the member is
reported in the summary (written off, or clawed back into debt), never silent."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.ledger import Ledger, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, write_rejects
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: miles, name: Miles, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: air, on: [purchase], currency: miles, per_amount: {points: 2}}
refunds: {shortfall: %s}
"""
HEADER = ["event_id", "type", "member", "at", "amount", "refund_of"]
PURCHASES = [
    ["p1", "purchase", "ann", "2026-11-02T10:00:00+01:00", "100.00", ""],
    ["p2", "purchase", "bob", "2026-11-02T11:00:00+01:00", "50.00", ""],
]
REFUNDS = [
    ["r1", "refund", "ann", "2026-11-04T10:00:00+01:00", "100.00", "p1"],
    ["r2", "refund", "bob", "2026-11-04T11:00:00+01:00", "10.00", "p2"],
    ["p3", "purchase", "cid", "2026-11-04T12:00:00+01:00", "5.00", ""],
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def balance(db: Database, member: str, currency: str) -> tuple[int, int]:
    b = Ledger(db).balance("shop", member, currency, as_of="2026-12-01T00:00:00Z")
    return b.available, b.debt


def spend_most(db: Database, program: str, tmp_path: Path) -> None:
    """Ann earns 100 points and 200 miles, then spends 70 points and 150 miles."""
    processor = EventProcessor(db, parse_program(program))
    import_events(processor, write_csv(tmp_path / "purchases.csv", PURCHASES))
    at = "2026-11-03T10:00:00+01:00"
    processor.ledger.spend("shop", "ann", "points", 70, key="s1", at=at)
    processor.ledger.spend("shop", "ann", "miles", 150, key="s2", at=at)


@pytest.mark.parametrize(
    ("policy", "written_off", "into_debt", "ann"),
    [
        ("within_balance", {"miles": 150, "points": 70}, {}, [(0, 0), (0, 0)]),
        ("debt", {}, {"miles": 150, "points": 70}, [(0, 70), (0, 150)]),
    ],
)
def test_import_summary_reports_what_refunds_could_not_take_back(
    pdb: Database,
    tmp_path: Path,
    policy: str,
    written_off: dict[str, int],
    into_debt: dict[str, int],
    ann: list[tuple[int, int]],
) -> None:
    program = PROGRAM % policy
    spend_most(pdb, program, tmp_path)
    refunds = write_csv(tmp_path / "refunds.csv", REFUNDS)
    report = import_events(EventProcessor(pdb, parse_program(program)), refunds)
    assert report.summary() == {
        "rows": 3, "processed": 3, "duplicates": 0, "rejected": 0, "rejected_by_code": {},
        "refunds": 2, "points_written_off": written_off, "points_into_debt": into_debt,
        "points_already_expired": {},
    }  # fmt: skip
    assert [balance(pdb, "ann", "points"), balance(pdb, "ann", "miles")] == ann
    # bob had every point left: his refund took back 10 and 20, fully
    assert (balance(pdb, "bob", "points"), balance(pdb, "bob", "miles")) == ((40, 0), (80, 0))
    again = import_events(EventProcessor(pdb, parse_program(program)), refunds)
    assert again.summary() == {
        "rows": 3, "processed": 0, "duplicates": 3, "rejected": 0, "rejected_by_code": {},
        "refunds": 0, "points_written_off": {}, "points_into_debt": {},
        "points_already_expired": {},
    }  # fmt: skip
    assert [balance(pdb, "ann", "points"), balance(pdb, "ann", "miles")] == ann
    assert_invariants(pdb, "shop")


def test_cli_import_prints_the_refund_shortfall(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM % "debt", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    db = Database(url)
    db.upgrade()
    spend_most(db, PROGRAM % "debt", tmp_path)
    db.dispose()
    refunds = write_csv(tmp_path / "refunds.csv", REFUNDS)
    _register()
    args = ["import", "events", str(refunds), "--program", str(program), "--db", url]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    lines = [" ".join(line.strip("│ ").split()) for line in table.stdout.splitlines()]
    assert "refunds │ 2" in lines
    assert "points clawed back into debt (points) │ 70" in lines
    assert "points clawed back into debt (miles) │ 150" in lines
    assert not any("written off" in line for line in lines)
    again = CliRunner().invoke(app, [*args, "--format", "json"])
    summary = json.loads(again.stdout)
    assert (summary["refunds"], summary["points_into_debt"]) == (0, {})


@pytest.mark.parametrize("batch", [False, True])
def test_import_lists_a_refund_dated_before_its_purchase_in_the_rejects_file(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    rows = [
        ["p1", "purchase", "ann", "2026-12-01T10:00:00+01:00", "500.00", ""],
        ["r1", "refund", "ann", "2026-11-01T10:00:00+01:00", "500.00", "p1"],
        ["p2", "purchase", "ann", "2026-12-02T10:00:00+01:00", "5.00", ""],
    ]
    processor = EventProcessor(pdb, parse_program(PROGRAM % "debt"))
    report = import_events(processor, write_csv(tmp_path / "events.csv", rows), batch=batch)
    assert report.summary() == {
        "rows": 3, "processed": 2, "duplicates": 0, "rejected": 1,
        "rejected_by_code": {"refund_before_purchase": 1},
        "refunds": 0, "points_written_off": {}, "points_into_debt": {},
        "points_already_expired": {},
    }  # fmt: skip
    write_rejects(tmp_path / "rejects.csv", report.rejected)
    assert (tmp_path / "rejects.csv").read_text(encoding="utf-8").splitlines() == [
        "row,event_id,code,message",
        '3,r1,refund_before_purchase,"the refund at 2026-11-01T10:00:00+01:00 is dated before '
        'its purchase, at 2026-12-01T10:00:00+01:00"',
    ]
    assert balance(pdb, "ann", "points") == (505, 0)
    assert_invariants(pdb, "shop")


def test_import_summary_reports_refunded_points_that_had_expired(
    pdb: Database, tmp_path: Path
) -> None:
    """ann's 100 points from p1 expired before its refund: nothing taken back from her,
    no shortfall, and the summary says so; bob's refund takes back his own points."""
    program = parse_program(PROGRAM.replace("refunds:", "expiry: {mode: after_earning, "
                                            "months: 1}\nrefunds:") % "reject")  # fmt: skip
    processor = EventProcessor(pdb, program)
    import_events(processor, write_csv(tmp_path / "purchases.csv", PURCHASES))
    processor.ledger.expire("shop", "2026-12-05T00:00:00Z", policy=program.expiry,
                            zone=program.zone)  # fmt: skip
    rows = [["p4", "purchase", "ann", "2026-12-05T10:00:00+01:00", "30.00", ""],
            ["r1", "refund", "ann", "2026-12-06T10:00:00+01:00", "100.00", "p1"]]  # fmt: skip
    report = import_events(processor, write_csv(tmp_path / "late.csv", rows))
    assert report.summary() == {
        "rows": 2, "processed": 2, "duplicates": 0, "rejected": 0, "rejected_by_code": {},
        "refunds": 1, "points_written_off": {}, "points_into_debt": {},
        "points_already_expired": {"miles": 200, "points": 100},
    }  # fmt: skip
    after = Ledger(pdb).balance("shop", "ann", "points", as_of="2026-12-07T00:00:00Z")
    assert (after.available, after.debt) == (30, 0)
    assert_invariants(pdb, "shop")
