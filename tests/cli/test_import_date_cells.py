"""``fidelite import events`` and ``fidelite import members`` as a user runs them, on a
SQLite file and on PostgreSQL: a number written as a time or a date (``20261201``) is a
rejected row naming its column (it was read as seconds since 1970: the purchase dated
1970-08-23, its points expired), as is a time before 1970, a join in the future, a birth
after today and NaN or infinity in attributes. Nothing is written for such a row."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from fidelite.store import Database
from tests.cli.support import as_json, fidelite

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
ISO = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-12-01T10:00:00+01:00"
TABLES = ("processed_events", "member_states", "members", "ledger_transactions", "lots")


def counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in TABLES}  # fmt: skip


def rejects(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def program_file(tmp_path: Path) -> Path:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    return program


def test_event_rows_with_a_number_or_an_early_time_or_nan_are_rejected(
    tmp_path: Path, db: Database
) -> None:
    program = program_file(tmp_path)
    fidelite("db", "upgrade", db=db.url)
    before = counts(db)
    events = tmp_path / "events.csv"
    events.write_text(
        "event_id,type,member,at,amount,attributes\n"
        "e1,purchase,ann,20261201,10,\n"
        "e2,purchase,ann,1700000000,10,\n"
        "e3,purchase,ann,1900-01-01T00:00:00Z,10,\n"
        "e4,purchase,ann,0001-01-01T00:00:00+00:00,10,\n"
        'e5,purchase,ann,2026-12-01T10:00:00+01:00,10,"{""x"": NaN}"\n'
        'e6,purchase,ann,2026-12-01T10:00:00+01:00,10,"{""x"": 1e999}"\n',
        encoding="utf-8",
    )
    report = as_json(fidelite("import", "events", events, "-p", program, "-f", "json", db=db.url))
    assert (report["rows"], report["processed"], report["rejected"]) == (6, 0, 6)
    early = "is before 1970-01-01T00:00:00Z, the earliest time accepted"
    finite = "attributes.x: must be a finite number (not NaN or infinity), got"
    assert rejects(tmp_path / "events.csv.rejects.csv") == [
        ["row", "event_id", "code", "message"],
        ["2", "e1", "invalid_row", "at: '20261201' is not an ISO 8601 date-time (date, T, time "
         "and UTC offset: 2026-10-02T10:00:00+02:00)"],
        ["3", "e2", "invalid_row", "at: '1700000000' is not an ISO 8601 date-time (date, T, "
         "time and UTC offset: 2026-10-02T10:00:00+02:00)"],
        ["4", "e3", "invalid_row", f"at: 1900-01-01T00:00:00+00:00 {early}"],
        ["5", "e4", "invalid_row", f"at: 0001-01-01T00:00:00+00:00 {early}"],
        ["6", "e5", "invalid_row", f"{finite} nan"],
        ["7", "e6", "invalid_row", f"{finite} inf"],
    ]  # fmt: skip
    assert counts(db) == before


def test_member_rows_with_bad_dates_or_nan_are_rejected(
    real_clock: None, tmp_path: Path, db: Database
) -> None:
    program = program_file(tmp_path)
    fidelite("db", "upgrade", db=db.url)
    before = counts(db)
    tomorrow = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)).date()
    members = tmp_path / "members.csv"
    members.write_text(
        "member,joined_at,birth_date,attributes\n"
        "m1,20261201,,\n"
        "m2,2099-01-01T00:00:00Z,,\n"
        f"m3,,{tomorrow.isoformat()},\n"
        "m4,,19900517,\n"
        'm5,,,"{""x"": Infinity}"\n'
        "m6,1969-12-31T23:59:59Z,,\n",
        encoding="utf-8",
    )
    report = as_json(fidelite("import", "members", members, "-p", program, "-f", "json",
                              db=db.url))  # fmt: skip
    assert (report["rows"], report["created"], report["rejected"]) == (6, 0, 6)
    rows = rejects(tmp_path / "members.csv.rejects.csv")
    future = rows[2][3]
    assert future.startswith("joined_at: 2099-01-01T00:00:00+00:00 is in the future: later "
                             "than now (") and future.endswith(
        ") plus the program's tolerance of 5 minute(s) (future_tolerance_minutes)")  # fmt: skip
    today = tomorrow - timedelta(days=1)
    assert rows[:2] + rows[3:] == [
        ["row", "member", "code", "message"],
        ["2", "m1", "invalid_row", f"joined_at: {ISO}, got '20261201'"],
        ["4", "m3", "invalid_row",
         f"birth_date: {tomorrow.isoformat()} is after today ({today.isoformat()} in "
         "Europe/Paris)"],
        ["5", "m4", "invalid_row",
         "birth_date: must be an ISO 8601 date YYYY-MM-DD, e.g. 1990-05-17, got '19900517'"],
        ["6", "m5", "invalid_row",
         "attributes.x: must be a finite number (not NaN or infinity), got inf"],
        ["7", "m6", "invalid_row",
         "joined_at: 1969-12-31T23:59:59+00:00 is before 1970-01-01T00:00:00Z, the earliest "
         "time accepted"],
    ]  # fmt: skip
    assert counts(db) == before
    # the same members, written right, are enrolled
    members.write_text("member,joined_at,birth_date\nm1,2026-12-01T10:00:00+01:00,1990-05-17\n",
                       encoding="utf-8")  # fmt: skip
    report = as_json(fidelite("import", "members", members, "-p", program, "-f", "json",
                              db=db.url))  # fmt: skip
    assert (report["created"], report["rejected"]) == (1, 0)
