"""Bulk import of files as spreadsheets and data tools write them: encodings, a byte
order mark, integer ids in Parquet, rows wider than the header, a rejects path that
cannot be written."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.ledger import Ledger
from fidelite.processing import EventProcessor
from fidelite.processing.importer import ImportFileError, import_events, import_members
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import_members import NOW

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
HEADER = "event_id,type,member,at,amount\n"
AT = "2026-11-02T10:00:00+01:00"


def processor(db: Database) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM))


def points(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-01T00:00:00Z").available


def count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def good_rows(n: int) -> str:
    return "".join(f"g{i},purchase,m{i % 7},{AT},2\n" for i in range(n))


def test_import_refuses_a_file_that_is_not_utf8_and_writes_nothing(
    pdb: Database, tmp_path: Path
) -> None:
    """The bad byte comes after several chunks' worth of good rows: none is imported."""
    file = tmp_path / "events.csv"
    file.write_bytes((HEADER + good_rows(300) + f"c1,purchase,café,{AT},3\n").encode("latin-1"))
    with pytest.raises(ImportFileError) as error:
        import_events(processor(pdb), file, chunk=50)
    assert str(error.value) == (
        f"{file}: line 302: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )
    assert (count(pdb, "processed_events"), count(pdb, "member_states")) == (0, 0)


def test_import_members_refuses_a_file_that_is_not_utf8(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "crm.csv"
    file.write_bytes("member,attributes\nann,\nzoé,\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match=r"crm\.csv: line 3: not UTF-8 text \(byte 0xe9\)"):
        import_members(processor(pdb), file, now=NOW)
    assert count(pdb, "member_states") == 0


def test_import_names_a_utf16_file(pdb: Database, tmp_path: Path) -> None:
    """A spreadsheet's "Unicode text": the message says UTF-16, not a byte 0xff."""
    file = tmp_path / "crm.csv"
    file.write_bytes("member,attributes\nann,\n".encode("utf-16"))
    with pytest.raises(ImportFileError) as error:
        import_members(processor(pdb), file, now=NOW)
    assert str(error.value) == (
        f'{file}: line 1: UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); '
        "save the file as UTF-8"
    )


@pytest.mark.parametrize("command", ["events", "members"])
def test_cli_import_of_a_latin1_file_fails_cleanly(tmp_path: Path, command: str) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    content = HEADER + f"c1,purchase,café,{AT},3\n" if command == "events" else "member\ncafé\n"
    file = tmp_path / "latin.csv"
    file.write_bytes(content.encode("latin-1"))
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _register()
    args = ["import", command, str(file), "--program", str(program), "--db", url]
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout) == {"error": {
        "code": "invalid_file",
        "message": f"{file}: line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8",
    }}  # fmt: skip
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 1
    assert f"{file}: line 2: not UTF-8 text (byte 0xe9)" in " ".join(table.stderr.split())
    assert not (tmp_path / "shop.db").exists()  # refused before the database is opened


def test_import_accepts_a_csv_with_a_byte_order_mark(pdb: Database, tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts the file with a byte order mark."""
    events = tmp_path / "events.csv"
    events.write_bytes(("\ufeff" + HEADER + f"e1,purchase,ann,{AT},12\n").encode("utf-8"))
    report = import_events(processor(pdb), events)
    assert (report.processed, report.rejected) == (1, [])
    assert points(pdb, "ann") == 12
    members = tmp_path / "crm.csv"
    members.write_bytes("\ufeffmember,segments\nbob,vip\n".encode())
    assert import_members(processor(pdb), members, now=NOW).created == 1
    profile = processor(pdb).member_profile("bob")
    assert profile is not None and profile["segments"] == ["vip"]


def test_import_accepts_integer_ids_in_parquet(pdb: Database, tmp_path: Path) -> None:
    table = pa.table({
        "event_id": pa.array([1001, 1002, 1003], pa.int64()),
        "type": ["purchase", "purchase", "refund"],
        "member": pa.array([42, 7, 42], pa.int64()),
        "at": [AT, AT, "2026-11-03T10:00:00+01:00"],
        "amount": ["10", "4", "5"],
        "refund_of": pa.array([None, None, 1001], pa.int64()),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "events.parquet")
    report = import_events(processor(pdb), tmp_path / "events.parquet")
    assert (report.processed, report.rejected) == (3, [])
    assert (points(pdb, "42"), points(pdb, "7")) == (5, 4)
    with pdb.read() as conn:
        ids = conn.execute(text("SELECT event_id FROM processed_events ORDER BY 1")).scalars()
        assert list(ids) == ["1001", "1002", "1003"]
    pq.write_table(pa.table({"member": pa.array([42, 99], pa.int64())}),
                   tmp_path / "members.parquet")  # fmt: skip
    members = import_members(processor(pdb), tmp_path / "members.parquet", now=NOW)
    assert (members.created, members.unchanged, members.rejected) == (1, 1, [])


def test_import_reports_a_row_wider_than_the_header(pdb: Database, tmp_path: Path) -> None:
    """An items cell written without quotes is split at its commas."""
    file = tmp_path / "events.csv"
    file.write_text(
        "event_id,type,member,at,amount,items\n"
        f"e1,purchase,ann,{AT},3,\n"
        f'e2,purchase,ann,{AT},3,[{{"sku": "A", "quantity": 1, "price": "3"}}]\n'
        f"e3,purchase,ann,{AT},4,\n",
        encoding="utf-8",
    )
    report = import_events(processor(pdb), file)
    assert report.processed == 2
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "e2", "invalid_row",
         "(row): 8 cells where the header has 6 (a cell holding commas needs quotes)"),
    ]  # fmt: skip
    assert points(pdb, "ann") == 7


def test_import_members_reports_a_row_wider_than_the_header(pdb: Database, tmp_path: Path) -> None:
    file = tmp_path / "crm.csv"
    file.write_text("member,segments\nann,vip\nbob,vip,gold\n", encoding="utf-8")
    report = import_members(processor(pdb), file, now=NOW)
    assert report.created == 1
    assert [(r.row, r.key, r.message) for r in report.rejected] == [
        (3, "bob", "(row): 3 cells where the header has 2 (a cell holding commas needs quotes)")
    ]
    assert processor(pdb).member_profile("bob") is None


def test_import_rejects_a_row_narrower_than_the_header(pdb: Database, tmp_path: Path) -> None:
    """A refund row missing its channel cell (separator and all) shifts its refund_of
    into the channel column: it is rejected for its cell count, never padded and then
    refused for a column it has. The good rows around it are imported; a blank line,
    in the middle or trailing, is no row."""
    file = tmp_path / "events.csv"
    file.write_text(
        "event_id,type,member,at,amount,channel,refund_of\n"
        f"s1,purchase,u1,{AT},10.00,store,\n"
        f"s2,purchase,u2,{AT},10.00,store,\n"
        "\n"
        f"rs1,refund,u1,{AT},10.00,s1\n"
        f"s3,purchase,u3,{AT},4\n"
        f"s4,purchase,u4,{AT},5.00,web,\n"
        "\n",
        encoding="utf-8",
    )
    report = import_events(processor(pdb), file)
    assert (report.rows, report.processed, report.refunds) == (5, 3, 0)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (5, "rs1", "invalid_row", "(row): 6 cells where the header has 7 "
         "(an empty value still needs its ',' separator)"),
        (6, "s3", "invalid_row", "(row): 5 cells where the header has 7 "
         "(an empty value still needs its ',' separator)"),
    ]  # fmt: skip
    assert [points(pdb, m) for m in ("u1", "u2", "u4")] == [10, 10, 5]
    assert processor(pdb).member_profile("u3") is None
    assert count(pdb, "processed_events") == 3


def test_import_members_rejects_a_row_narrower_than_the_header(
    pdb: Database, tmp_path: Path
) -> None:
    file = tmp_path / "crm.csv"
    file.write_text("member;segments;birth_date\nann;vip;\nbob;vip\ncid;;1990-02-03\n\n",
                    encoding="utf-8")  # fmt: skip
    report = import_members(processor(pdb), file, now=NOW)
    assert (report.rows, report.created) == (3, 2)
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (3, "bob", "invalid_row", "(row): 2 cells where the header has 3 "
         "(an empty value still needs its ';' separator)"),
    ]  # fmt: skip
    assert processor(pdb).member_profile("bob") is None
    assert processor(pdb).member_profile("ann") is not None


def test_cli_import_writes_the_narrow_row_to_the_rejects_file(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = tmp_path / "events.csv"
    file.write_text(HEADER + f"e1,purchase,ann,{AT},12\ne2,purchase,ann,{AT}\n\n", "utf-8")
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _register()
    args = ["import", "events", str(file), "--program", str(program), "--db", url,
            "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["processed"], summary["rejected"]) == (2, 1, 1)
    with (tmp_path / "events.csv.rejects.csv").open(encoding="utf-8", newline="") as handle:
        rejects = list(csv.reader(handle))
    assert rejects == [
        ["row", "event_id", "code", "message"],
        ["3", "e2", "invalid_row", "(row): 4 cells where the header has 5 "
         "(an empty value still needs its ',' separator)"],
    ]  # fmt: skip


@pytest.mark.parametrize("where", ["missing/rejects.csv", "."], ids=["no-directory", "directory"])
def test_cli_import_checks_the_rejects_path_before_importing(tmp_path: Path, where: str) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = tmp_path / "events.csv"
    file.write_text(HEADER + f"e1,purchase,ann,{AT},12\ne2,purchase,ann,nope,1\n", "utf-8")
    rejects = tmp_path / where
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _register()
    args = ["import", "events", str(file), "--program", str(program), "--db", url,
            "--rejects", str(rejects), "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_rejects_path"
    assert error["message"].startswith(f"--rejects {rejects}: cannot write the rejects file")
    assert not (tmp_path / "missing").exists()
    assert not (tmp_path / "shop.db").exists()  # refused before the database is opened


def test_import_warns_of_rows_dated_before_an_earlier_row_of_their_member(
    pdb: Database, tmp_path: Path
) -> None:
    """The rows are applied in file order, never re-sorted; the summary names how many
    came before an earlier row of the same member, and the first of them."""
    file = tmp_path / "events.csv"
    file.write_text(HEADER + "o2,purchase,ord,2026-11-02T10:00:00+01:00,10\n"
                    "x1,purchase,other,2026-05-01T10:00:00+02:00,1\n"
                    "o1,purchase,ord,2026-05-04T10:00:00+02:00,10\n"
                    "o3,purchase,ord,2026-11-02T10:00:00+01:00,2\n"
                    "o9,purchase,ord,2026-05-04T11:00:00+02:00,10\n", "utf-8")  # fmt: skip
    report = import_events(processor(pdb), file, chunk=2)
    assert (report.processed, report.rejected) == (5, [])
    assert report.summary()["out_of_order"] == {"rows": 2, "first_rows": [4, 6]}
    in_order = tmp_path / "sorted.csv"
    in_order.write_text(HEADER + f"s1,purchase,ann,{AT},1\ns2,purchase,ann,{AT},1\n", "utf-8")
    assert "out_of_order" not in import_events(processor(pdb), in_order).summary()


def test_a_refused_row_is_no_members_latest_time_for_the_order_warning(
    pdb: Database, tmp_path: Path
) -> None:
    """A row dated years ahead by mistake is refused (event_in_future); the sorted rows
    after it are not reported as dated before it."""
    file = tmp_path / "events.csv"
    file.write_text(HEADER + "t1,purchase,ann,2026-11-01T10:00:00+01:00,10\n"
                    "t2,purchase,ann,2030-11-02T10:00:00+01:00,10\n"
                    "t3,purchase,ann,2026-11-03T10:00:00+01:00,10\n"
                    "t4,purchase,ann,2026-11-04T10:00:00+01:00,10\n", "utf-8")  # fmt: skip
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    report = import_events(EventProcessor(pdb, parse_program(PROGRAM), clock=lambda: now), file)
    assert report.processed == 3
    assert [(r.row, r.code) for r in report.rejected] == [(3, "event_in_future")]
    assert "out_of_order" not in report.summary()


def test_an_unknown_column_suggests_the_closest_known_one(pdb: Database, tmp_path: Path) -> None:
    """A typo of a column is told with the column meant, as an unknown event type is; a
    name close to no column stands alone. The file is refused, nothing written."""
    file = tmp_path / "events.csv"
    file.write_text("event_id,type,member,at,amount,chanel,colour\n"
                    f"e1,purchase,ann,{AT},10,web,red\n")  # fmt: skip
    with pytest.raises(ImportFileError) as error:
        import_events(processor(pdb), file)
    assert str(error.value) == (
        f"{file}: unknown column(s): 'chanel' (did you mean 'channel'?), 'colour'"
    )
    pq.write_table(pa.table({"member": ["ann"], "segment": ["vip"]}), tmp_path / "m.parquet")
    with pytest.raises(ImportFileError) as error:
        import_members(processor(pdb), tmp_path / "m.parquet", now=NOW)
    assert str(error.value) == (
        f"{tmp_path / 'm.parquet'}: unknown column(s): 'segment' (did you mean 'segments'?)"
    )
    assert (count(pdb, "processed_events"), count(pdb, "members")) == (0, 0)
