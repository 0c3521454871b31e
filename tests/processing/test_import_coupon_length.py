"""An imported row whose coupon is longer than the 64 characters the events table keeps
is rejected alone as ``invalid_row`` naming ``coupon``, the same on SQLite and
PostgreSQL: it was ``processing_failed`` with the database's error on PostgreSQL, a
recorded ``coupon_invalid`` on SQLite. Real databases (SQLite file, then PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.processing.tables import events
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


@pytest.mark.parametrize("batch", [True, False])
def test_a_coupon_longer_than_64_characters_rejects_its_row_alone(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = tmp_path / "sales.csv"
    file.write_text(
        "event_id,type,member,at,amount,coupon\n"
        f"p1,purchase,ann,2026-12-07T08:40:00+01:00,10,{'X' * 80}\n"
        f"p2,purchase,ann,2026-12-07T08:41:00+01:00,10,{'X' * 64}\n"
        "p3,purchase,bob,2026-12-07T08:42:00+01:00,10,\n",
        encoding="utf-8",
    )
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, batch=batch)
    assert (report.rows, report.processed) == (3, 2)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (2, "p1", "invalid_row", "coupon: at most 64 characters (a coupon code is at most 25), "
         "got 80"),
    ]  # fmt: skip
    with pdb.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.coupon, events.c.coupon_accepted).order_by(
                events.c.event_id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("p2", "X" * 64, 0), ("p3", None, None)]
    assert_invariants(pdb, "shop")
