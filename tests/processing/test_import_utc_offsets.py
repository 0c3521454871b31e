"""Imports on a SQLite file and PostgreSQL: a time written with a UTC offset no clock has
(beyond -12:00..+14:00) is a rejected row naming its row and column, as the API refuses
it; the other rows are imported. (The events import took -23:59 as written and the
members import took +16:00, dating the event or the join a day off what was meant.)"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, import_members
from fidelite.processing.tables import events
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
"""
NOW = datetime(2026, 11, 23, tzinfo=UTC)
OFFSETS = (
    "offsets run from -12:00 to +14:00 (write the time with its real offset, or in UTC with Z)"
)


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def recorded(db: Database) -> list[tuple[str, datetime]]:
    with db.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.occurred_at).order_by(events.c.event_id)
        ).all()
    return [(str(r[0]), r[1]) for r in rows]


def test_an_event_row_with_an_offset_no_clock_has_is_rejected(
    pdb: Database, tmp_path: Path
) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: NOW)
    rows = write(tmp_path / "events.csv", ["event_id", "type", "member", "at", "amount"], [
        ["p1", "purchase", "ann", "2026-02-28T10:00:00-12:00", "10"],
        ["p2", "purchase", "ann", "2026-02-28T10:00:00-23:59", "20"],
        ["p3", "purchase", "bob", "2026-02-28T10:00:00+18:00", "30"],
        ["p4", "purchase", "ann", "2026-02-28T10:00:00+14:00", "40"],
        ["p5", "purchase", "ann", "2026-02-28T10:00:00", "50"],
    ])  # fmt: skip
    report = import_events(processor, rows)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "p2", "invalid_row",
         f"at: 2026-02-28T10:00:00-23:59 has UTC offset -23:59: {OFFSETS}"),
        (4, "p3", "invalid_row",
         f"at: 2026-02-28T10:00:00+18:00 has UTC offset +18:00: {OFFSETS}"),
        (6, "p5", "invalid_row", "at: needs a UTC offset (e.g. +00:00): '2026-02-28T10:00:00'"),
    ]  # fmt: skip
    assert (report.processed, recorded(pdb)) == (2, [
        ("p1", datetime(2026, 2, 28, 22, tzinfo=UTC)),
        ("p4", datetime(2026, 2, 27, 20, tzinfo=UTC)),
    ])  # fmt: skip
    assert [processor.member_profile(m) is None for m in ("ann", "bob")] == [False, True]
    assert_invariants(pdb)


def test_a_member_row_joined_with_an_offset_no_clock_has_is_rejected(
    pdb: Database, tmp_path: Path
) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: NOW)
    members = write(tmp_path / "members.csv", ["member", "joined_at"], [
        ["ann", "2026-02-28T10:00:00+14:00"],
        ["bob", "2026-02-28T10:00:00+16:00"],
        ["cid", "2026-02-28T10:00:00-12:30"],
    ])  # fmt: skip
    report = import_members(processor, members, now=NOW)
    assert report.created == 1
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "bob", "invalid_row",
         f"joined_at: 2026-02-28T10:00:00+16:00 has UTC offset +16:00: {OFFSETS}"),
        (4, "cid", "invalid_row",
         f"joined_at: 2026-02-28T10:00:00-12:30 has UTC offset -12:30: {OFFSETS}"),
    ]  # fmt: skip
    assert [processor.member_profile(m) is None for m in ("ann", "bob", "cid")] == [
        False, True, True,
    ]  # fmt: skip
