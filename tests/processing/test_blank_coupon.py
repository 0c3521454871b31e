"""A coupon of spaces only is no coupon, as an empty cell is: a till or a CSV file
sending blanks had the purchase recorded with the code ``''`` and traced
``coupon_invalid``. Real databases (SQLite file, then PostgreSQL), batch and one by one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from fidelite.engine.event import Event
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


def test_a_coupon_of_spaces_is_read_as_none() -> None:
    event = Event.model_validate({"id": "p1", "type": "purchase", "member": "ann",
                                  "at": "2026-12-07T08:40:00+01:00", "amount": "10",
                                  "coupon": " \t "})  # fmt: skip
    assert event.coupon is None


@pytest.mark.parametrize("batch", [True, False])
def test_an_imported_coupon_of_spaces_records_no_coupon(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = tmp_path / "sales.csv"
    file.write_text(
        "event_id,type,member,at,amount,coupon\n"
        'p1,purchase,ann,2026-12-07T08:40:00+01:00,10,"   "\n'
        "p2,purchase,bob,2026-12-07T08:42:00+01:00,10,\n",
        encoding="utf-8",
    )
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    report = import_events(processor, file, batch=batch)
    assert (report.rows, report.processed, report.rejected) == (2, 2, [])
    with pdb.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.coupon, events.c.coupon_accepted).order_by(
                events.c.event_id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("p1", None, None), ("p2", None, None)]
    assert_invariants(pdb, "shop")
