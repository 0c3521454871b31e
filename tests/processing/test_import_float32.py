"""Amounts in a single-precision Parquet column are read as they were written.

A data tool writing 12.34 into a float32 column stores the binary value
12.340000152587890625; read as a double that is 12.34000015258789, 16 significant digits
and 12 decimal places, which the amount rules refused (more than 4 places). A float32
(or float16) column's values are now read at that type's precision: the shortest decimal
that reads back as the same float32 (12.34), then checked as any amount, so 0.00001
stored as a float32 is still refused. A double column is read as before. On real
databases (SQLite file, then PostgreSQL).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.ledger import Ledger, Rejected, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.processing.rows import read_rows
from fidelite.processing.tables import events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 100}}
"""
AT = "2026-11-02T10:00:00+01:00"
PLACES = "amount: at most 4 decimal places (the books keep money to 1/10,000), got {}"
ITEM = pa.struct([("sku", pa.string()), ("quantity", pa.int64()), ("price", pa.float32())])


def _parquet(path: Path, amounts: list[float | None], kind: pa.DataType = pa.float32()) -> Path:
    """Purchases p1, p2... by ann, bob, ann, bob..., their amounts in a ``kind`` column."""
    ids = [f"p{n}" for n in range(1, len(amounts) + 1)]
    table = pa.table(
        {
            "event_id": ids,
            "type": ["purchase"] * len(ids),
            "member": [("ann", "bob")[n % 2] for n in range(len(ids))],
            "at": [AT] * len(ids),
            "amount": pa.array(amounts, kind),
        }
    )
    pq.write_table(table, path)
    return path


def _recorded(db: Database) -> list[tuple[str, Decimal]]:
    with db.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.amount).order_by(events.c.event_id)
        ).all()
    return [(r[0], Decimal(r[1])) for r in rows]


def _points(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z").available


def test_float32_amounts_are_cells_at_float32_precision(tmp_path: Path) -> None:
    halves = np.array([12.34, 0.1], dtype=np.float16)
    table = pa.table(
        {
            "event_id": ["p1", "p2"],
            "amount": pa.array([12.34, None], pa.float32()),
            "double": pa.array([12.34000015258789, 0.1]),
            "half": pa.array(halves, pa.float16()),
            "items": pa.array([[{"sku": "A", "quantity": 2, "price": 6.17}], None],
                              pa.list_(ITEM)),
            "labels": pa.array([[("vat", 0.2)], []], pa.map_(pa.string(), pa.float32())),
            "coded": pa.array([343126.12, 343126.12], pa.float32()).dictionary_encode(),
        }
    )  # fmt: skip
    pq.write_table(table, tmp_path / "cells.parquet")
    optional = ["double", "half", "items", "labels", "coded"]
    rows = list(read_rows(tmp_path / "cells.parquet", (["event_id", "amount"], optional)))
    assert [(r.number, r.cells, r.problem) for r in rows] == [
        (2, {"event_id": "p1", "amount": 12.34, "double": 12.34000015258789, "half": 12.34,
             "items": [{"sku": "A", "quantity": 2, "price": 6.17}],
             "labels": [("vat", 0.2)], "coded": 343126.12}, None),
        (3, {"event_id": "p2", "amount": None, "double": 0.1, "half": 0.1, "items": None,
             "labels": [], "coded": 343126.12}, None),
    ]  # fmt: skip
    assert [str(r.cells["amount"]) for r in rows] == ["12.34", "None"]


@pytest.mark.parametrize("batch", [True, False])
def test_a_float32_file_imports_exact_amounts_and_again_is_all_duplicates(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = _parquet(tmp_path / "sales.parquet", [12.34, 0.1, 1999.95, 250.5])
    program = parse_program(PROGRAM)
    first = import_events(EventProcessor(pdb, program), file, batch=batch)
    assert (first.rows, first.processed, first.duplicates, first.rejected) == (4, 4, 0, [])
    recorded = [("p1", Decimal("12.34")), ("p2", Decimal("0.1")),
                ("p3", Decimal("1999.95")), ("p4", Decimal("250.5"))]  # fmt: skip
    assert _recorded(pdb) == recorded
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (201_229, 25_060)

    again = import_events(EventProcessor(pdb, program), file, batch=batch)
    assert (again.rows, again.processed, again.duplicates, again.rejected) == (4, 0, 4, [])
    assert _recorded(pdb) == recorded
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (201_229, 25_060)
    assert_invariants(pdb, "shop")


def test_a_float32_amount_with_more_than_4_places_is_refused_naming_its_row(
    pdb: Database, tmp_path: Path
) -> None:
    file = _parquet(tmp_path / "sales.parquet", [12.34, 0.00001, 5.0, 12.345678])
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    assert (report.rows, report.processed) == (4, 2)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "p2", "invalid_row", PLACES.format("0.00001")),
        (5, "p4", "invalid_row", PLACES.format("12.345678")),
    ]
    assert _recorded(pdb) == [("p1", Decimal("12.34")), ("p3", Decimal(5))]
    assert _points(pdb, "ann") == 1_734
    with pytest.raises(Rejected, match="no member 'bob'"):  # never enrolled
        _points(pdb, "bob")
    assert_invariants(pdb, "shop")


def test_a_double_column_is_read_as_before(pdb: Database, tmp_path: Path) -> None:
    """The type decides, not the value: the double 12.34000015258789 is 16 significant
    digits, read at 15 (12.3400001525879), still more than 4 places."""
    file = _parquet(tmp_path / "sales.parquet", [12.34000015258789, 12.34], pa.float64())
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file)
    assert report.processed == 1
    assert [(r.row, r.message) for r in report.rejected] == [
        (2, PLACES.format("12.34000015258789"))
    ]
    assert _recorded(pdb) == [("p2", Decimal("12.34"))]


def test_cli_import_of_a_float32_file(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = _parquet(tmp_path / "sales.parquet", [12.34, 0.1])
    _register()
    args: list[Any] = ["import", "events", str(file), "--program", str(program),
                       "--db", f"sqlite:///{tmp_path / 'shop.db'}", "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["rejected"], summary["rejects_file"]) == (2, 0, None)
    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert (again["processed"], again["duplicates"], again["rejected"]) == (0, 2, 0)
    assert not (tmp_path / "sales.parquet.rejects.csv").exists()
