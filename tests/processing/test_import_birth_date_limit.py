"""A birth date before 1900-01-01 is refused naming the field, in the members import
(CSV and Parquet) and the API alike (a CRM's placeholder 0001-01-01 and 1850-06-01
were stored, and birthday rules would fire for them); nothing is written for the row
or the call."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import update

from fidelite.processing import EventProcessor
from fidelite.processing.importer import RejectedRow, import_members
from fidelite.processing.tables import member_states
from fidelite.program import parse_program
from fidelite.store import Database
from tests.api.conftest import Live, live  # noqa: F401  (the API over real HTTP)

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
NOW = datetime.fromisoformat("2026-11-01T09:00:00+00:00")
TOO_EARLY = ("is before 1900-01-01, the earliest birth date accepted (a placeholder for an "
             "unknown date is no birth date: leave it empty)")  # fmt: skip


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["member", "birth_date", "segments"])
        writer.writerows(rows)
    return path


def test_the_members_import_refuses_a_birth_before_1900(pdb: Database, tmp_path: Path) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    first = write_csv(tmp_path / "crm.csv", [["b0", "1990-05-17", "vip"]])
    assert import_members(processor, first, now=NOW).created == 1
    crm = write_csv(tmp_path / "crm2.csv", [
        ["b1", "0001-01-01", "vip"], ["b2", "1850-06-01", "vip"], ["b3", "1899-12-31", "vip"],
        ["b4", "1900-01-01", "vip"], ["b0", "0001-01-01", "gold"],
    ])  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert report.rejected == [
        RejectedRow(2, "b1", "invalid_row", f"birth_date: 0001-01-01 {TOO_EARLY}"),
        RejectedRow(3, "b2", "invalid_row", f"birth_date: 1850-06-01 {TOO_EARLY}"),
        RejectedRow(4, "b3", "invalid_row", f"birth_date: 1899-12-31 {TOO_EARLY}"),
        RejectedRow(6, "b0", "invalid_row", f"birth_date: 0001-01-01 {TOO_EARLY}"),
    ]
    assert (report.created, report.updated) == (1, 0)
    b4, b0 = processor.member_profile("b4"), processor.member_profile("b0")
    assert b4 is not None and b4["birth_date"] == date(1900, 1, 1)
    assert b0 is not None and (b0["birth_date"], b0["segments"]) == (date(1990, 5, 17), ["vip"])
    assert [processor.member_profile(ref) for ref in ("b1", "b2", "b3")] == [None] * 3
    typed = tmp_path / "crm.parquet"
    born = pa.array([date(1, 1, 1)], pa.date32())
    pq.write_table(pa.table({"member": ["p1"], "birth_date": born}), typed)
    report = import_members(processor, typed, now=NOW)
    assert report.rejected == [
        RejectedRow(2, "p1", "invalid_row", f"birth_date: 0001-01-01 {TOO_EARLY}")
    ]
    assert processor.member_profile("p1") is None


def test_the_api_refuses_a_birth_before_1900(live: Live) -> None:  # noqa: F811
    with live.client("admin") as client:
        assert client.post("/v1/members", json={"id": "ann", "birth_date": "1990-05-17"}
                           ).status_code == 201  # fmt: skip
        before = (client.get("/v1/members").json(), live.ledger_rows())
        for answer in (
            client.post("/v1/members", json={"id": "bob", "birth_date": "0001-01-01"}),
            client.patch("/v1/members/ann", json={"birth_date": "0001-01-01"}),
        ):
            assert answer.status_code == 422, answer.text
            assert answer.json()["errors"] == [
                {"location": "body.birth_date", "message": f"0001-01-01 {TOO_EARLY}"}
            ]
        assert (client.get("/v1/members").json(), live.ledger_rows()) == before
        answer = client.patch("/v1/members/ann", json={"birth_date": "1900-01-01"})
        assert (answer.status_code, answer.json()["birth_date"]) == (200, "1900-01-01")


def stored_before_the_limit(db: Database, ref: str, born: date) -> None:
    """What an import before the limit stored (a CRM's placeholder 0001-01-01)."""
    with db.write() as conn:
        conn.execute(update(member_states).where(member_states.c.member_ref == ref)
                     .values(birth_date=born))  # fmt: skip


def test_a_stored_birth_before_1900_repeated_is_no_change(pdb: Database, tmp_path: Path) -> None:
    """Re-running a CRM file from before the limit: the row that repeats the member's
    stored 0001-01-01 is unchanged (or updates its other fields); a change to another
    date before 1900, or that date for a member who has none, is still refused."""
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    first = write_csv(tmp_path / "crm.csv", [["old", "", "vip"], ["b0", "1990-05-17", "vip"]])
    assert import_members(processor, first, now=NOW).created == 2
    stored_before_the_limit(pdb, "old", date(1, 1, 1))
    again = write_csv(tmp_path / "again.csv", [["old", "0001-01-01", "vip"]])
    report = import_members(processor, again, now=NOW)
    assert (report.unchanged, report.updated, report.rejected) == (1, 0, [])
    crm = write_csv(tmp_path / "crm2.csv", [
        ["old", "0001-01-01", "gold"], ["old", "1850-06-01", "club"],
        ["b0", "0001-01-01", "club"], ["new", "0001-01-01", "club"],
    ])  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert report.rejected == [
        RejectedRow(3, "old", "invalid_row", f"birth_date: 1850-06-01 {TOO_EARLY}"),
        RejectedRow(4, "b0", "invalid_row", f"birth_date: 0001-01-01 {TOO_EARLY}"),
        RejectedRow(5, "new", "invalid_row", f"birth_date: 0001-01-01 {TOO_EARLY}"),
    ]
    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    old, b0 = processor.member_profile("old"), processor.member_profile("b0")
    assert old is not None and (old["birth_date"], old["segments"]) == (date(1, 1, 1), ["gold"])
    assert b0 is not None and (b0["birth_date"], b0["segments"]) == (date(1990, 5, 17), ["vip"])
    assert processor.member_profile("new") is None


def test_the_api_takes_a_stored_birth_before_1900_repeated(live: Live) -> None:  # noqa: F811
    with live.client("admin") as client:
        assert client.post("/v1/members", json={"id": "ann", "segments": ["vip"]}
                           ).status_code == 201  # fmt: skip
        stored_before_the_limit(live.db, "ann", date(1, 1, 1))
        answer = client.post("/v1/members", json={"id": "ann", "birth_date": "0001-01-01"})
        assert (answer.status_code, answer.json()["birth_date"]) == (200, "0001-01-01")
        answer = client.patch("/v1/members/ann",
                              json={"birth_date": "0001-01-01", "segments": ["gold"]})  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert (answer.json()["birth_date"], answer.json()["segments"]) == ("0001-01-01", ["gold"])
        before = (client.get("/v1/members").json(), live.ledger_rows())
        answer = client.patch("/v1/members/ann", json={"birth_date": "1850-06-01"})
        assert answer.status_code == 422
        assert answer.json()["errors"] == [
            {"location": "body.birth_date", "message": f"1850-06-01 {TOO_EARLY}"}
        ]
        assert (client.get("/v1/members").json(), live.ledger_rows()) == before
