"""A return window of N days ends at the same local time N days later in the program's
zone, as expiry dates keep the local clock, on SQLite and PostgreSQL, one event at a
time and through the batch path: across a change of offset a local day is not 24 hours.
"""

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
pending: {days: 14, event_types: [purchase]}
expiry: {mode: after_earning, months: 1}
"""


def lots(db: Database) -> list[tuple[int, datetime, datetime]]:
    with db.read() as conn:
        rows = conn.execute(
            text("SELECT points, expires_at, pending_until FROM lots ORDER BY id")
        ).all()
    return [(int(r[0]), _utc(r[1]), _utc(r[2])) for r in rows]


def _utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@pytest.mark.parametrize("batch", [True, False])
def test_a_hold_across_a_dst_change_ends_at_the_same_local_time(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    path = tmp_path / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([
            ["event_id", "type", "member", "at", "amount"],
            ["autumn", "purchase", "ann", "2026-10-20T10:00:00+02:00", "10"],
            ["spring", "purchase", "ann", "2026-03-20T10:00:00+01:00", "20"],
            ["sent_in_utc", "purchase", "ann", "2026-10-20T08:00:00Z", "30"],
            ["summer", "purchase", "ann", "2026-07-01T10:00:00+02:00", "40"],
        ])  # fmt: skip
    report = import_events(processor, path, batch=batch)
    assert (report.processed, report.rejected) == (4, [])
    assert lots(pdb) == [
        # 2026-11-03T10:00+01:00 (24-hour steps ended it at 09:00+01:00, 08:00Z)
        (10, datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 3, 9, tzinfo=UTC)),
        # 2026-04-03T10:00+02:00 (24-hour steps ended it at 11:00+02:00, 09:00Z)
        (20, datetime(2026, 4, 20, 8, tzinfo=UTC), datetime(2026, 4, 3, 8, tzinfo=UTC)),
        (30, datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 3, 9, tzinfo=UTC)),
        # No change of offset in the window: 14 times 24 hours, as before.
        (40, datetime(2026, 8, 1, 8, tzinfo=UTC), datetime(2026, 7, 15, 8, tzinfo=UTC)),
    ]
    # At 09:30 local time on 3 November the autumn points are still held.
    held = processor.ledger.balance("shop", "ann", "points", as_of="2026-11-03T09:30:00+01:00")
    assert (held.available, held.pending) == (0, 40)  # spring and summer: expired
    after = processor.ledger.balance("shop", "ann", "points", as_of="2026-11-03T10:00:00+01:00")
    assert (after.available, after.pending) == (40, 0)
    assert_invariants(pdb)
