"""Times in a Parquet column typed with a named zone are held and compared in elapsed time.

pandas writes a zoned series as ``timestamp[us, tz=Europe/Paris]``; pyarrow reads it
back as datetimes whose ``tzinfo`` is the zone itself, on which Python adds and compares
in wall-clock time. A 14-day hold across a change of offset ended an hour off (the hold
of 2026-03-20T10:00 CET ended at 09:00 CEST instead of 10:00 CEST, the same local time
14 days later, as docs/program.md says), and two purchases in the repeated hour of
2026-10-25, in order (00:45Z then 01:10Z), were reported ``out_of_order``. Such a time is
now kept with its offset at that instant, fixed, where it enters the engine: the same
lots as the same events written in a CSV file. On real databases (SQLite file, then
PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from fidelite.engine.calendar import LocalDays, add_days, fixed_offset, shifted
from fidelite.engine.event import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, row_to_member
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import Lot, Member

PARIS = ZoneInfo("Europe/Paris")
PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
expiry: {mode: after_earning, months: 12, rounding: end_of_month}
pending: {days: 14, event_types: [purchase]}
"""


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (member, UTC time of the purchase) -> (earned_at, pending_until, expires_at), in UTC
EXPECTED = {
    # 10:00 CET -> 10:00 CEST 14 days later
    "pa": (z("2026-03-20T09:00"), z("2026-04-03T08:00"), z("2027-03-31T22:00")),
    # 10:00 CEST -> 10:00 CET 14 days later
    "pb": (z("2026-10-20T08:00"), z("2026-11-03T09:00"), z("2027-10-31T23:00")),
    # no change of offset within the hold
    "pc": (z("2026-01-31T23:30"), z("2026-02-14T23:30"), z("2027-02-28T23:00")),
}


def _paris_parquet(path: Path, rows: list[tuple[str, str, datetime]]) -> Path:
    """Purchases of 10 (id, member, UTC time) with ``at`` typed tz=Europe/Paris."""
    table = pa.table(
        {
            "event_id": [r[0] for r in rows],
            "type": ["purchase"] * len(rows),
            "member": [r[1] for r in rows],
            "at": pa.array([r[2] for r in rows], pa.timestamp("us", tz="Europe/Paris")),
            "amount": [10.0] * len(rows),
        }
    )
    pq.write_table(table, path)
    read = pq.read_table(path).column("at").to_pylist()
    assert all(isinstance(at.tzinfo, ZoneInfo) for at in read)  # what pyarrow gives
    return path


def _lots(db: Database) -> dict[str, tuple[datetime, datetime | None, datetime | None]]:
    with db.read() as conn:
        rows = conn.execute(
            select(Member.ref, Lot.earned_at, Lot.pending_until, Lot.expires_at)
            .join(Member, Member.id == Lot.member_id)
            .order_by(Lot.id)
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.parametrize("batch", [True, False])
def test_a_hold_across_a_change_of_offset_ends_at_the_same_local_time(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    rows = [(f"q{n}", member, at) for n, (member, (at, _, _)) in enumerate(EXPECTED.items())]
    file = _paris_parquet(tmp_path / "sales.parquet", rows)
    program = parse_program(PROGRAM)
    report = import_events(EventProcessor(pdb, program), file, batch=batch)
    assert (report.rows, report.processed, report.rejected, report.out_of_order) == (3, 3, [], [])
    assert _lots(pdb) == EXPECTED
    assert_invariants(pdb, "shop")

    # The same purchases written in a CSV file (offsets as text) hold the same lots.
    csv = tmp_path / "sales.csv"
    lines = ["event_id,type,member,at,amount"]
    for n, (member, (at, _, _)) in enumerate(EXPECTED.items()):
        lines.append(f"c{n},purchase,{member}_csv,{at.astimezone(PARIS).isoformat()},10")
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_events(EventProcessor(pdb, program), csv, batch=batch)
    assert (report.processed, report.rejected) == (3, [])
    lots = _lots(pdb)
    assert {m: lots[f"{m}_csv"] for m in EXPECTED} == EXPECTED


@pytest.mark.parametrize("batch", [True, False])
def test_purchases_in_the_repeated_hour_in_order_are_not_out_of_order(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    """02:45 CEST (00:45Z) then 02:10 CET (01:10Z) on 2026-10-25: in order."""
    rows = [("o1", "oa", z("2026-10-25T00:45")), ("o2", "oa", z("2026-10-25T01:10"))]
    file = _paris_parquet(tmp_path / "night.parquet", rows)
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM)), file, batch=batch)
    assert (report.processed, report.rejected, report.out_of_order) == (2, [], [])
    with pdb.read() as conn:
        held = conn.execute(
            select(Lot.earned_at, Lot.pending_until, Lot.points).order_by(Lot.id)
        ).all()
    assert [tuple(r) for r in held] == [
        (z("2026-10-25T00:45"), z("2026-11-08T01:45"), 10),  # 02:45 CEST -> 02:45 CET
        (z("2026-10-25T01:10"), z("2026-11-08T01:10"), 10),  # 02:10 CET -> 02:10 CET
    ]


def test_an_event_time_in_a_named_zone_is_kept_at_its_fixed_offset() -> None:
    at = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=PARIS)  # 01:10Z
    event = Event(id="e", type="purchase", member="ann", at=at, amount=Decimal(10))
    assert event.at.tzinfo == timezone(timedelta(hours=1))
    assert (event.at.isoformat(), event.at.fold) == ("2026-10-25T02:10:00+01:00", 0)
    earlier = Event(
        id="d", type="purchase", member="ann", at=z("2026-10-25T00:45").astimezone(PARIS),
        amount=Decimal(10),
    )  # fmt: skip
    assert earlier.at < event.at
    sent = Event(id="s", type="purchase", member="ann", at="2026-10-25T02:10:00+01:00",
                 amount=Decimal(10))  # fmt: skip
    assert (sent.at, sent.at.isoformat()) == (event.at, event.at.isoformat())

    _, _, joined = row_to_member({"member": "ann", "joined_at": at}, z("2027-01-01T00:00"))
    assert (joined.isoformat(), joined.fold) == ("2026-10-25T02:10:00+01:00", 0)
    assert joined.astimezone(UTC) == z("2026-10-25T01:10")
    assert joined > z("2026-10-25T00:45").astimezone(PARIS)


def test_calendar_arithmetic_on_a_named_zone_is_in_elapsed_time() -> None:
    start = datetime(2026, 3, 20, 10, tzinfo=PARIS)  # 09:00Z
    days = timedelta(days=14)
    want = z("2026-04-03T08:00")  # 10:00 CEST
    assert LocalDays(PARIS, days).add(start) == want
    assert add_days(start, days, PARIS) == want
    assert LocalDays(PARIS, days).add(start).tzinfo is PARIS
    assert shifted(start, days) == z("2026-04-03T09:00")  # 14 x 24 hours
    # a named zone other than the program's
    york = datetime(2026, 3, 5, 9, tzinfo=ZoneInfo("America/New_York"))  # 14:00Z, EST
    assert add_days(york, days, ZoneInfo("UTC")) == z("2026-03-19T14:00")
    assert LocalDays(ZoneInfo("UTC"), days).add(york) == z("2026-03-19T14:00")
    fixed = fixed_offset(start)
    assert (fixed, fixed.tzinfo) == (start, timezone(timedelta(hours=1)))
    assert fixed_offset(fixed) is fixed
