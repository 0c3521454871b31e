"""An amount carrying a binary double's noise is read as the number it stands for.

A spreadsheet or a pandas export writes 11.000000000000002 or 0.30000000000000004 for
11 and 0.3 (the nearest double to a sum); the 4-decimal-places rule refused them. An
amount written with more than 15 significant digits (more than a double holds) is now
read at 15 significant digits first, and taken if that has at most 4 places; an
amount of at most 15 significant digits is taken as written (10.00005 is still
refused). Importing such a file twice finds duplicates the second time, not
``event_id_conflict``. On real databases (SQLite file, then PostgreSQL).
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
HEADER = ["event_id", "type", "member", "at", "amount", "refund_of"]
AT = "2026-11-02T10:00:00+01:00"
LATER = "2026-11-04T10:00:00+01:00"
PLACES = "at most 4 decimal places (the books keep money to 1/10,000), got {}"


def _event(amount: Any, kind: str = "purchase", **more: Any) -> Event:
    return Event.model_validate(
        {"id": "e1", "type": kind, "member": "ann", "at": AT, "amount": amount, **more}
    )


def _exact(amount: Decimal | None) -> tuple[Any, ...]:
    """The Decimal's sign, digits and exponent: 11 and 11.0000 differ here."""
    assert amount is not None
    return tuple(amount.as_tuple())


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("11.000000000000002", "11"),
        ("0.30000000000000004", "0.3"),
        (11.000000000000002, "11"),
        (0.1 + 0.2, "0.3"),
        ("100.00000000000001", "100"),
        ("12.345600000000001", "12.3456"),
        ("12.345599999999999", "12.3456"),
        ("0.29999999999999999", "0.3"),
        ("1234.5678000000001", "1234.5678"),
        ("9999999999.99990000001", "9999999999.9999"),
        ("0011.000000000000002000", "11"),
        ("+11.000000000000002", "11"),
        ("1.1000000000000002e1", "11"),
        ("1.1000000000000002E+1", "11"),
        ("3.0000000000000004E-1", "0.3"),
        ("0.3000000000000000444089209850062616169452667236328125", "0.3"),
    ],
)
def test_a_double_s_noise_beyond_15_digits_is_dropped(sent: Any, read: str) -> None:
    event = _event(sent)
    assert event.amount == Decimal(read)
    assert _exact(event.amount) == _exact(Decimal(read))


def test_a_refund_amount_is_read_the_same_way() -> None:
    refund = _event("0.30000000000000004", kind="refund", refund_of="p1")
    assert _exact(refund.amount) == _exact(Decimal("0.3"))


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("10.00000", "10.00000"), ("0.000000", "0.000000"), ("10.0001", "10.0001"),
     ("123456.7890000", "123456.7890000"), ("1E+3", "1E+3"), (0.1, "0.1")],
)  # fmt: skip
def test_an_amount_of_at_most_15_digits_or_4_places_is_kept_as_written(
    sent: Any, kept: str
) -> None:
    assert _exact(_event(sent).amount) == _exact(Decimal(kept))


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("10.00005", "10.00005"),  # 7 digits: as written, 5 places
        (10.00005, "10.00005"),
        ("123456789.012345", "123456789.012345"),  # 15 digits: as written, 6 places
        ("10.000050000000000001", "10.000050000000000001"),  # 15 digits: 10.00005
        ("1234567.89012345678", "1234567.89012345678"),  # 15 digits: 1234567.89012346
        ("5.551115123125783e-17", "5.551115123125783E-17"),  # 15 digits: still 17 places
    ],
)
def test_what_still_has_more_than_4_places_is_refused_naming_the_field(
    sent: Any, shown: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _event(sent)
    assert [(e["loc"], e["type"], e["msg"]) for e in caught.value.errors()] == [
        (("amount",), "decimal_max_places", PLACES.format(shown))
    ]


def test_a_negative_amount_is_refused_as_before() -> None:
    with pytest.raises(ValidationError) as caught:
        _event("-0.30000000000000004")
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [(("amount",), NEGATIVE_AMOUNT)]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _recorded(db: Database) -> list[tuple[str, Decimal, Decimal]]:
    with db.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.amount, events.c.refunded_amount).order_by(
                events.c.event_id
            )
        ).all()
    return [(r[0], Decimal(r[1]), Decimal(r[2])) for r in rows]


def _points(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z").available


@pytest.mark.parametrize("batch", [True, False])
def test_a_file_of_double_amounts_imported_again_is_all_duplicates(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    file = _csv(tmp_path / "export.csv", [
        ["p1", "purchase", "ann", AT, "11.000000000000002", ""],
        ["p2", "purchase", "bob", AT, "0.30000000000000004", ""],
        ["p3", "purchase", "bob", AT, "10.00005", ""],
    ])  # fmt: skip
    program = parse_program(PROGRAM)
    first = import_events(EventProcessor(pdb, program), file, batch=batch)
    assert (first.rows, first.processed, first.duplicates) == (3, 2, 0)
    assert [(r.row, r.key, r.code, r.message) for r in first.rejected] == [
        (4, "p3", "invalid_row", "amount: " + PLACES.format("10.00005"))
    ]
    recorded = [("p1", Decimal(11), Decimal(0)), ("p2", Decimal("0.3"), Decimal(0))]
    assert _recorded(pdb) == recorded
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (11, 0)

    again = import_events(EventProcessor(pdb, program), file, batch=batch)
    assert (again.rows, again.processed, again.duplicates) == (3, 0, 2)
    assert [(r.row, r.code) for r in again.rejected] == [(4, "invalid_row")]
    assert _recorded(pdb) == recorded  # nothing changed
    assert (_points(pdb, "ann"), _points(pdb, "bob")) == (11, 0)

    refunds = _csv(tmp_path / "refunds.csv", [
        ["r1", "refund", "ann", LATER, "11.000000000000002", "p1"],
    ])  # fmt: skip
    back = import_events(EventProcessor(pdb, program), refunds, batch=batch)
    assert (back.processed, back.rejected) == (1, [])
    assert _points(pdb, "ann") == 0
    assert _recorded(pdb)[0] == ("p1", Decimal(11), Decimal(11))  # refunded in full
    assert_invariants(pdb, "shop")
