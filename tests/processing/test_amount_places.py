"""Event amounts have at most 4 decimal places, the places the books keep.

A finer amount (10.00005) was taken as sent but kept rounded (10.0001): the same file
imported again reported ``event_id_conflict`` instead of duplicates, and a refund of
the whole amount sent was refused as exceeding what was left. It is now refused at
validation, the row alone, naming ``amount``; trailing zeros (10.00000) are no places
and go through as before. On real databases (SQLite file, then PostgreSQL).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.engine.event import NEGATIVE_AMOUNT
from fidelite.ledger import Ledger, assert_invariants
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
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
HEADER = ["event_id", "type", "member", "at", "amount", "refund_of", "items"]
AT = "2026-11-02T10:00:00+01:00"
LATER = "2026-11-04T10:00:00+01:00"
PLACES = "at most 4 decimal places (the books keep money to 1/10,000), got {}"


def _event(amount: Any, **more: Any) -> Event:
    return Event.model_validate(
        {"id": "e1", "type": "purchase", "member": "ann", "at": AT, "amount": amount, **more}
    )


@pytest.mark.parametrize(
    ("sent", "shown"),
    [("10.00005", "10.00005"), ("1.23456", "1.23456"), ("0.00001", "0.00001"),
     ("1E-5", "0.00001"), ("1.2345600", "1.2345600"), (10.00005, "10.00005")],
)  # fmt: skip
def test_an_amount_finer_than_the_books_is_refused_naming_the_field(sent: Any, shown: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _event(sent)
    errors = caught.value.errors()
    assert [(e["loc"], e["type"], e["msg"]) for e in errors] == [
        (("amount",), "decimal_max_places", PLACES.format(shown))
    ]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("10.00000", Decimal("10.00000")), ("10.0001", Decimal("10.0001")),
     ("1.2345000", Decimal("1.2345000")), ("0.000000", Decimal(0)), ("1E+3", Decimal(1000)),
     (0.1, Decimal("0.1")), (5, Decimal(5)), ("10000000000.0000", Decimal(10**10))],
)  # fmt: skip
def test_trailing_zeros_are_no_places(sent: Any, kept: Decimal) -> None:
    assert _event(sent).amount == kept


def test_the_other_bounds_are_checked_as_before() -> None:
    for sent, message in [("-0.00001", NEGATIVE_AMOUNT),
                          ("1E+11", "Input should be less than or equal to 10000000000"),
                          ("NaN", "Input should be a finite number")]:  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            _event(sent)
        assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [(("amount",), message)]
    signup = Event.model_validate({"id": "s", "type": "signup", "member": "m", "at": AT})
    assert signup.amount is None


def test_an_item_price_may_be_finer() -> None:
    """Item prices are not kept by the store (only rules read them): not refused."""
    event = _event("10.00", items=[{"sku": "A", "quantity": 3, "price": "3.33335"}])
    assert event.items[0].price == Decimal("3.33335")


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _import(db: Database, file: Path) -> Any:
    return import_events(EventProcessor(db, parse_program(PROGRAM)), file)


def _recorded(db: Database) -> list[tuple[str, Decimal | None, Decimal]]:
    with db.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.amount, events.c.refunded_amount).order_by(
                events.c.event_id
            )
        ).all()
    return [(r[0], None if r[1] is None else Decimal(r[1]), Decimal(r[2])) for r in rows]


def _points(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z").available


@pytest.mark.parametrize("batch", [True, False])
def test_import_refuses_the_fine_row_alone_and_a_second_run_finds_duplicates(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = _csv(tmp_path / "events.csv", [
        ["p1", "purchase", "ann", AT, "10.00005", "", ""],
        ["p2", "purchase", "ann", AT, "12.50", "", ""],
        ["p3", "purchase", "bob", AT, "1.23456", "", ""],
        ["p4", "purchase", "bob", AT, "7.00000", "", ""],
    ])  # fmt: skip
    first = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, batch=batch)
    assert (first.rows, first.processed, first.duplicates) == (4, 2, 0)
    assert [(r.row, r.key, r.code, r.message) for r in first.rejected] == [
        (2, "p1", "invalid_row", "amount: " + PLACES.format("10.00005")),
        (4, "p3", "invalid_row", "amount: " + PLACES.format("1.23456")),
    ]
    recorded = [("p2", Decimal("12.5"), Decimal(0)), ("p4", Decimal(7), Decimal(0))]
    assert _recorded(pdb) == recorded
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (12, 7)

    again = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, batch=batch)
    assert (again.processed, again.duplicates) == (0, 2)  # not event_id_conflict
    assert [(r.row, r.code) for r in again.rejected] == [(2, "invalid_row"), (4, "invalid_row")]
    assert _recorded(pdb) == recorded  # nothing changed
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (12, 7)
    assert_invariants(pdb, "shop")


def test_a_full_refund_of_an_amount_to_the_unit_is_taken(pdb: Database, tmp_path: Path) -> None:
    purchases = [["p1", "purchase", "ann", AT, "10.0001", "", ""],
                 ["p2", "purchase", "bob", AT, "9.00000", "", ""]]  # fmt: skip
    _import(pdb, _csv(tmp_path / "p.csv", purchases))
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (10, 9)
    refunds = _csv(tmp_path / "r.csv", [
        ["r1", "refund", "ann", LATER, "10.0001", "p1", ""],
        ["r2", "refund", "bob", LATER, "9.00000", "p2", ""],
    ])  # fmt: skip
    report = _import(pdb, refunds)
    assert (report.processed, report.rejected) == (2, [])
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (0, 0)
    assert _recorded(pdb) == [
        ("p1", Decimal("10.0001"), Decimal("10.0001")), ("p2", Decimal(9), Decimal(9)),
        ("r1", Decimal("10.0001"), Decimal(0)), ("r2", Decimal(9), Decimal(0)),
    ]  # fmt: skip
    again = _import(pdb, refunds)
    assert (again.processed, again.duplicates, again.rejected) == (0, 2, [])
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (0, 0)
    assert_invariants(pdb, "shop")


def test_a_fine_refund_is_refused_and_leaves_the_purchase_as_it_was(
    pdb: Database, tmp_path: Path
) -> None:
    _import(pdb, _csv(tmp_path / "p.csv", [["p1", "purchase", "ann", AT, "10.00", "", ""]]))
    report = _import(pdb, _csv(tmp_path / "r.csv",
                               [["r1", "refund", "ann", LATER, "0.00001", "p1", ""]]))  # fmt: skip
    assert [(r.row, r.code, r.message) for r in report.rejected] == [
        (2, "invalid_row", "amount: " + PLACES.format("0.00001"))
    ]
    assert _recorded(pdb) == [("p1", Decimal(10), Decimal(0))]
    assert _points(pdb, "ann") == 10
