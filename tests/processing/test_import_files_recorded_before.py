"""Files imported before keep importing: an items cell whose quantity is text ("2", as
its price may be "3.00") is read as before, so re-running the file finds its events
(it rejected the rows once whole numbers had to be JSON numbers); a Parquet members
file whose attributes struct lacks a key in some rows (pyarrow fills it with null)
imports those rows without that attribute (they were rejected). Real databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, import_members
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
"""
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("batch", [True, False])
def test_quantity_written_as_text_imports_and_reimports_as_duplicate(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = tmp_path / "sales.csv"
    file.write_text(
        "event_id,type,member,at,amount,items\n"
        'e4,purchase,ann,2026-12-07T08:40:00+01:00,6,"[{""sku"": ""A"", ""quantity"": ""2"", '
        '""price"": ""3.00""}]"\n'
        'e5,purchase,ann,2026-12-07T08:41:00+01:00,6,"[{""sku"": ""A"", ""quantity"": true, '
        '""price"": ""3.00""}]"\n',
        encoding="utf-8",
    )
    processor = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: NOW)
    first = import_events(processor, file, batch=batch)
    assert (first.processed, first.duplicates) == (1, 0)
    assert [(r.row, r.code) for r in first.rejected] == [(3, "invalid_row")]
    assert "quantity: must be a whole number, not true/false, got true" in first.rejected[0].message
    again = import_events(processor, file, batch=batch)
    assert (again.processed, again.duplicates, len(again.rejected)) == (0, 1, 1)
    assert processor.ledger.balance("shop", "ann", "points").available == 6
    assert_invariants(pdb, "shop")


def test_parquet_attributes_struct_with_a_key_missing_in_a_row(
    pdb: Database, tmp_path: Path
) -> None:
    file = tmp_path / "members.parquet"
    table = pa.table({
        "member": ["P1", "P2"],
        "attributes": [{"optin": True, "score": 2.0}, {"optin": False}],
    })  # fmt: skip
    assert table.column("attributes").to_pylist()[1] == {"optin": False, "score": None}
    pq.write_table(table, file)
    processor = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: NOW)
    report = import_members(processor, file, now=NOW)
    assert (report.created, report.rejected) == (2, [])
    p1, p2 = processor.member_profile("P1"), processor.member_profile("P2")
    assert p1 is not None and p2 is not None
    assert (p1["attributes"], p2["attributes"]) == ({"optin": True, "score": 2.0}, {"optin": False})
