"""What an import tells of a bad header and of a bad cell: every header problem at
once, each unknown column with the column it likely means; a rejected cell echoed as
written with what to write instead; a date of the right shape that names no day said
so, not called "not a date"."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelite.processing import EventProcessor
from fidelite.processing.importer import (
    ImportFileError,
    count_rows,
    import_events,
    import_members,
)
from fidelite.processing.tables import events as processed_events
from fidelite.processing.tables import member_states
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import import PROGRAM
from tests.processing.test_import_members import NOW


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _processor(db: Database) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM))


def _recorded(db: Database) -> list[str]:
    with db.read() as conn:
        query = select(processed_events.c.event_id).order_by(processed_events.c.event_id)
        return list(conn.execute(query).scalars())


def _members(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(member_states)).scalar_one())


def test_an_events_header_tells_missing_and_unknown_columns_at_once(
    pdb: Database, tmp_path: Path
) -> None:
    file = _write(tmp_path / "typo.csv", ["event_id", "type", "member", "date", "amount",
                                          "chanel"],
                  [["x1", "purchase", "Z1", "2026-11-01T10:00:00Z", "10", "web"]])  # fmt: skip
    expected = (f"{file}: missing column(s): at; unknown column(s): 'date' (did you mean 'at'?), "
                "'chanel' (did you mean 'channel'?)")  # fmt: skip
    with pytest.raises(ImportFileError) as counted:
        count_rows(file)
    assert str(counted.value) == expected
    with pytest.raises(ImportFileError) as imported:
        import_events(_processor(pdb), file)
    assert str(imported.value) == expected
    assert _recorded(pdb) == []


def test_a_members_header_tells_missing_and_unknown_columns_at_once(
    pdb: Database, tmp_path: Path
) -> None:
    file = _write(tmp_path / "crm.csv", ["membre", "segment", "birth_date"],
                  [["ann", "vip", "1990-05-17"]])  # fmt: skip
    with pytest.raises(ImportFileError) as caught:
        import_members(_processor(pdb), file, now=NOW)
    assert str(caught.value) == (
        f"{file}: missing column(s): member; unknown column(s): 'membre' (did you mean "
        "'member'?), 'segment' (did you mean 'segments'?)"
    )
    assert _members(pdb) == 0


def test_rejected_event_cells_are_echoed_with_what_to_write(pdb: Database, tmp_path: Path) -> None:
    header = ["event_id", "type", "member", "at", "amount", "items"]
    rows = [
        ["e1", "purchase", "ann", "2026-11-02T10:00:00+01:00", "12.50", ""],
        ["e2", "Purchase", "ann", "2026-11-03T10:00:00+01:00", "12,50", ""],
        ["e3", "purchase", "ann", "2026-02-30T10:00:00+01:00", "1,000.50", ""],
        ["e4", "Gift Card", "ann", "02/10/2026 10:00", "1.000,50", ""],
        ["e5", "purchase", "ann", "2026-11-04T24:00:00+01:00", "1,000", ""],
        ["e6", "achat payé", "ann", "2026-13-01T10:00:00Z", "€12", ""],
    ]
    report = import_events(_processor(pdb), _write(tmp_path / "sales.csv", header, rows))
    assert (report.rows, report.processed) == (6, 1)
    rule = "lower-case letters, digits and _, starting with a letter"
    iso = "is not an ISO 8601 date-time (date, T, time and UTC offset: 2026-10-02T10:00:00+02:00)"
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "e2", "invalid_row",
         f"type: 'Purchase' is not an event type name ({rule}; did you mean 'purchase'?); "
         "amount: '12,50' is not a number; use a point as the decimal separator (12.50)"),
        (4, "e3", "invalid_row",
         "at: '2026-02-30T10:00:00+01:00' is not a day of the calendar (February 2026 has 28 "
         "days); amount: '1,000.50' is not a number; write it without thousands separators "
         "(1000.50)"),
        (5, "e4", "invalid_row",
         f"type: 'Gift Card' is not an event type name ({rule}; did you mean 'gift_card'?); "
         f"at: '02/10/2026 10:00' {iso}; amount: '1.000,50' is not a number; write it with a "
         "point as the decimal separator and no thousands separator (1000.50)"),
        (6, "e5", "invalid_row",
         "at: '2026-11-04T24:00:00+01:00' is not a time of day (hours are 00 to 23, minutes "
         "and seconds 00 to 59); amount: '1,000' is not a number; use a point as the decimal "
         "separator (1.000) and no thousands separator (1000)"),
        (7, "e6", "invalid_row",
         f"type: 'achat payé' is not an event type name ({rule}); "
         "at: '2026-13-01T10:00:00Z' is not a day of the calendar (months are 01 to 12); "
         "amount: '€12' is not a number; write digits with a point as the decimal separator "
         "(e.g. 12.50)"),
    ]  # fmt: skip
    assert _recorded(pdb) == ["e1"]


def test_member_dates_that_name_no_day_are_told_so(pdb: Database, tmp_path: Path) -> None:
    header = ["member", "joined_at", "birth_date"]
    rows = [
        ["ann", "2026-09-01T10:00:00+02:00", "1990-05-12"],
        ["bob", "", "1990-02-30"],
        ["cid", "2026-02-29T10:00:00+01:00", "2000-02-29"],
        ["dee", "", "12/05/1985"],
        ["eve", "2026-04-31", "0000-01-01"],
    ]
    report = import_members(_processor(pdb), _write(tmp_path / "crm.csv", header, rows), now=NOW)
    assert (report.rows, report.created) == (5, 1)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "bob", "invalid_row",
         "birth_date: '1990-02-30' is not a day of the calendar (February 1990 has 28 days)"),
        (4, "cid", "invalid_row",
         "joined_at: '2026-02-29T10:00:00+01:00' is not a day of the calendar (February 2026 "
         "has 28 days)"),
        (5, "dee", "invalid_row", "birth_date: not a date YYYY-MM-DD: '12/05/1985'"),
        (6, "eve", "invalid_row",
         "joined_at: '2026-04-31' is not a day of the calendar (April 2026 has 30 days); "
         "birth_date: '0000-01-01' is not a day of the calendar (years start at 0001)"),
    ]  # fmt: skip
    assert _members(pdb) == 1


@pytest.mark.parametrize(
    ("text", "told"),
    [("2024-02-29", None), ("2024-02-30", "'2024-02-30' is not a day of the calendar (February "
      "2024 has 29 days)"), ("2026-12-31T23:59:59Z", None), ("12/05/1985", None),
     ("2026-06-31 10:00", "'2026-06-31 10:00' is not a day of the calendar (June 2026 has 30 "
      "days)"), ("2026-06-00", "'2026-06-00' is not a day of the calendar (June 2026 has 30 "
      "days)"), ("2026-06-01T10:60", "'2026-06-01T10:60' is not a time of day (hours are 00 to "
      "23, minutes and seconds 00 to 59)")],
)  # fmt: skip
def test_calendar_problem(text: str, told: str | None) -> None:
    from fidelite.processing.cells import calendar_problem  # (new with this check)

    assert calendar_problem(text) == told
