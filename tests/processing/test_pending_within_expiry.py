"""A program whose return window is one day shorter than the shortest span of its
expiry policy (the longest it may load with) takes a purchase on the worst days, on
SQLite and PostgreSQL, one event at a time and through the batch path: 31 January
(clamped to 28 February), 1 December (three months to 1 March), the last day of a
month under end-of-month rounding. With one day more the program does not load, where
such purchases used to be refused at processing (pending_until: must be earlier than
expires_at)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
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


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def lots(db: Database) -> list[tuple[int, datetime | None, datetime | None]]:
    with db.read() as conn:
        rows = conn.execute(
            text("SELECT points, expires_at, pending_until FROM lots ORDER BY id")
        ).all()
    return [(int(r[0]), _utc(r[1]), _utc(r[2])) for r in rows]


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run(db: Database, tmp_path: Path, policies: str, rows: list[list[str]], batch: bool) -> None:
    processor = EventProcessor(db, parse_program(PROGRAM + policies))
    path = tmp_path / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["event_id", "type", "member", "at", "amount"], *rows])
    report = import_events(processor, path, batch=batch)
    assert (report.processed, report.rejected) == (len(rows), [])


@pytest.mark.parametrize("batch", [True, False])
def test_purchases_on_the_worst_days_are_earned(pdb: Database, tmp_path: Path, batch: bool) -> None:
    policies = "expiry: {mode: after_earning, months: 3}\npending: {days: 88}\n"
    run(pdb, tmp_path, policies, [
        ["jan31", "purchase", "ann", "2025-01-31T10:00:00+01:00", "10"],
        ["dec1", "purchase", "ann", "2025-12-01T10:00:00+01:00", "20"],
        ["nov30", "purchase", "bob", "2025-11-30T23:30:00+01:00", "30"],
    ], batch)  # fmt: skip
    assert lots(pdb) == [
        # expires 2025-04-30T10:00+02:00, held until 2025-04-29T10:00+02:00
        (10, utc(2025, 4, 30, 8), utc(2025, 4, 29, 8)),
        # expires 2026-03-01T10:00+01:00, held until 2026-02-27T10:00+01:00
        (20, utc(2026, 3, 1, 9), utc(2026, 2, 27, 9)),
        # expires 2026-02-28T23:30+01:00, held until 2026-02-26T23:30+01:00
        (30, utc(2026, 2, 28, 22, 30), utc(2026, 2, 26, 22, 30)),
    ]
    assert_invariants(pdb)


@pytest.mark.parametrize("batch", [True, False])
def test_end_of_month_rounding_on_the_last_evening_of_january(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    policies = (
        "expiry: {mode: after_earning, months: 1, rounding: end_of_month}\npending: {days: 28}\n"
    )
    run(
        pdb,
        tmp_path,
        policies,
        [["late", "purchase", "ann", "2026-01-31T23:30:00+01:00", "5"]],
        batch,
    )
    # held until 2026-02-28T23:30+01:00, half an hour before the points expire
    assert lots(pdb) == [(5, utc(2026, 2, 28, 23), utc(2026, 2, 28, 22, 30))]
    assert_invariants(pdb)


def test_inactivity_leaves_a_day_to_spend_what_was_held(pdb: Database, tmp_path: Path) -> None:
    policies = "expiry: {mode: inactivity, months: 1}\npending: {days: 27}\n"
    run(
        pdb,
        tmp_path,
        policies,
        [["jan31", "purchase", "ann", "2025-01-31T10:00:00+01:00", "40"]],
        False,
    )
    assert lots(pdb) == [(40, None, utc(2025, 2, 27, 9))]
    program = parse_program(PROGRAM + policies)
    ledger = EventProcessor(pdb, program).ledger

    def balance(at: str) -> tuple[int, int]:
        b = ledger.balance(
            "shop", "ann", "points", as_of=at, policy=program.expiry, zone=program.zone
        )
        return b.available, b.pending

    assert balance("2025-02-27T09:59:59+01:00") == (0, 40)
    assert balance("2025-02-27T10:00:00+01:00") == (40, 0)  # spendable for a day
    assert balance("2025-02-28T10:00:00+01:00") == (0, 0)  # then lapsed
