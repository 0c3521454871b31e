"""Events and members dated at the calendar's end (year 9999), on SQLite and
PostgreSQL: a date computed from them that would fall past 9999 is not set (points that
never expire) or stops at the calendar's last instant (a hold), instead of failing the
event; a time whose UTC is outside the calendar is a rejected row naming its column."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, import_members
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
pending: {days: 14, event_types: [purchase]}
expiry: {mode: after_earning, months: 12, rounding: end_of_month}
"""
LAST = datetime.max.replace(tzinfo=UTC)


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def lots(db: Database) -> list[tuple[int, str, datetime | None, datetime | None]]:
    with db.read() as conn:
        rows = conn.execute(
            text("SELECT points, state, expires_at, pending_until FROM lots ORDER BY id")
        ).all()
    return [(int(r[0]), str(r[1]), _utc(r[2]), _utc(r[3])) for r in rows]


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@pytest.mark.parametrize("batch", [True, False])
def test_purchases_in_the_calendars_last_days_earn_points_that_never_expire(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: LAST)
    events = write(tmp_path / "events.csv", ["event_id", "type", "member", "at", "amount"], [
        ["p1", "purchase", "ann", "1970-01-01T00:00:00+00:00", "10"],  # the earliest time
        ["p2", "purchase", "ann", "9999-12-20T10:00:00+00:00", "20"],
        ["p3", "purchase", "ann", "9999-12-31T23:30:00+00:00", "30"],  # year 10000 in Paris
    ])  # fmt: skip
    report = import_events(processor, events, batch=batch)
    assert (report.processed, report.rejected) == (3, [])
    # 12 months, to the end of the month: 1 February 1971 in Paris (then at +01:00)
    first_expiry = datetime(1971, 1, 31, 23, tzinfo=UTC)
    first_hold = datetime(1970, 1, 15, tzinfo=UTC)
    assert lots(pdb) == [
        (10, "pending", first_expiry, first_hold),
        (20, "pending", None, LAST),  # 14 days later is 10000-01-03: held to the end
        (30, "pending", None, LAST),
    ]
    assert_invariants(pdb)


def test_a_join_time_outside_the_calendar_is_a_rejected_row(pdb: Database, tmp_path: Path) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: LAST)
    members = write(tmp_path / "members.csv", ["member", "joined_at"], [
        ["ann", "9999-12-31T23:59:59-05:00"],
        ["bob", "0001-01-01T00:00:00+05:00"],
        ["cid", "0001-01-01T00:00:00+00:00"],
    ])  # fmt: skip
    report = import_members(processor, members, now=datetime(2026, 11, 23, tzinfo=UTC))
    assert report.created == 0
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (2, "ann", "invalid_row",
         "joined_at: 9999-12-31T23:59:59-05:00 is outside the calendar once in UTC"),
        (3, "bob", "invalid_row",
         "joined_at: 0001-01-01T00:00:00+05:00 is outside the calendar once in UTC"),
        (4, "cid", "invalid_row",  # in the calendar, but before 1970
         "joined_at: 0001-01-01T00:00:00+00:00 is before 1970-01-01T00:00:00Z, the earliest "
         "time accepted"),
    ]  # fmt: skip
    assert [processor.member_profile(m) for m in ("ann", "bob", "cid")] == [None] * 3
