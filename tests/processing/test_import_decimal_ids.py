"""Id columns written as decimals: pandas writes an id column with one empty cell as
float64 (``1001.0``), a database export may write a Parquet decimal. Both imports read
such a number as the text of its whole value (``'1001'``, as an int64 column and the
till name the member), refuse a fraction (``8.5``) naming row and column, and keep the
member an older members import enrolled as ``'1001.0'`` for the float and decimal cells
of ``1001`` while no member ``1001`` exists or was erased (text cells name ``'1001'``)."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from fidelite.engine import Event
from fidelite.ledger import Ledger, assert_invariants
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor
from fidelite.processing.cells import Float16, Float32, id_key, id_text
from fidelite.processing.importer import RejectedRow, import_events, import_members
from fidelite.processing.tables import member_states
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import Member

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: first, on: [purchase], when: "member.purchases == 0", fixed: 100}
"""
NOW = datetime.fromisoformat("2026-11-01T09:00:00+00:00")
AT = "2026-11-01T10:00:00+00:00"
WHOLE = ("is not a whole number, so it names no id (an id column holds text or whole "
         "numbers: 1001, or 1001.0 as a decimal column holds it)")  # fmt: skip


def large(kind: str, exact: int) -> str:
    return (f"is too large for the precision of a {kind} column to hold an id exactly "
            f"(from {exact} on, not every whole number is such a float): the id may have "
            "been rounded; export the column as whole numbers (int64) or text")  # fmt: skip


def parquet(path: Path, columns: dict[str, pa.Array]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def purchases(path: Path, ids: pa.Array, members: pa.Array, amounts: list[float]) -> Path:
    return parquet(path, {
        "event_id": ids, "type": pa.array(["purchase"] * len(amounts)), "member": members,
        "at": pa.array([AT] * len(amounts)), "amount": pa.array(amounts, pa.float64()),
    })  # fmt: skip


def members(db: Database) -> list[tuple[str, list[str]]]:
    with db.read() as conn:
        rows = conn.execute(select(member_states.c.member_ref, member_states.c.segments)
                            .order_by(member_states.c.member_ref))  # fmt: skip
        return [(ref, list(segments)) for ref, segments in rows]


def available(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-31T00:00:00Z").available


def count_members(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(member_states)).scalar_one())


@pytest.mark.parametrize(
    ("cell", "text"),
    [(1001, "1001"), (1001.0, "1001"), (-5.0, "-5"), (Decimal("1001.00"), "1001"),
     (float(2**53 - 1), "9007199254740991"), (Float32(2**24 - 1), "16777215"),
     (Float16(2**11 - 1), "2047"), ("1001.0", "1001.0"), (" x ", " x ")],
)  # fmt: skip
def test_a_whole_number_is_the_text_of_its_value(cell: Any, text: str) -> None:
    assert id_text(cell) == text
    assert id_key(cell) == text


@pytest.mark.parametrize(
    ("cell", "message"),
    [(8.5, f"8.5 {WHOLE}"), (Decimal("8.50"), f"8.50 {WHOLE}"), (float("nan"), f"nan {WHOLE}"),
     (float("inf"), f"inf {WHOLE}"),
     (2.0**53 + 2, f"9007199254740994.0 {large('float64', 2**53)}"),
     (2.0**53, f"9007199254740992.0 {large('float64', 2**53)}"),
     (Float32(2**24), f"16777216.0 {large('float32', 2**24)}"),
     (Float32(-(2**24)), f"-16777216.0 {large('float32', 2**24)}"),
     (Float16(2048), f"2048.0 {large('float16', 2**11)}")],
)  # fmt: skip
def test_a_number_that_is_no_whole_value_names_no_id(cell: Any, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        id_text(cell)
    assert str(raised.value) == message
    assert id_key(cell) == str(cell)  # (a reject line names the cell as written)


def test_a_float_id_column_names_the_members_the_till_names(pdb: Database, tmp_path: Path) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    crm = parquet(tmp_path / "crm.parquet", {
        "member": pa.array([1001.0, 1002.0, None], pa.float64()),
        "segments": pa.array(["vip", "gold", "vip"]),
    })  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.rejected == [
        RejectedRow(4, "", "invalid_row", "member: missing member reference")
    ]
    assert members(pdb) == [("1001", ["vip"]), ("1002", ["gold"])]
    again = write_csv(tmp_path / "crm.csv", ["member", "segments"], [["1001", "club"]])
    report = import_members(processor, again, now=NOW)
    assert (report.created, report.updated, report.rejected) == (0, 1, [])
    assert members(pdb) == [("1001", ["club"]), ("1002", ["gold"])]
    sales = purchases(tmp_path / "sales.parquet", pa.array([1.0, 2.0], pa.float64()),
                      pa.array([1001.0, 1002.0], pa.float64()), [10.0, 5.0])  # fmt: skip
    done = import_events(processor, sales)
    assert (done.processed, done.rejected) == (2, [])
    assert (available(pdb, "1001"), available(pdb, "1002")) == (110, 105)
    assert import_events(processor, sales).duplicates == 2  # event ids '1' and '2'
    decimal = purchases(tmp_path / "dec.parquet", pa.array(["d1"]),
                        pa.array([Decimal("1001.00")], pa.decimal128(8, 2)), [7.0])  # fmt: skip
    assert import_events(processor, decimal).processed == 1
    assert available(pdb, "1001") == 117
    assert [ref for ref, _ in members(pdb)] == ["1001", "1002"]
    assert_invariants(pdb, "shop")


def test_a_fraction_in_an_id_column_is_refused_naming_row_and_column(
    pdb: Database, tmp_path: Path
) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    crm = parquet(tmp_path / "crm.parquet", {
        "member": pa.array([8.5, 1001.0], pa.float64()),
        "segments": pa.array(["vip", "vip"]),
    })  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert report.rejected == [RejectedRow(2, "8.5", "invalid_row", f"member: 8.5 {WHOLE}")]
    assert members(pdb) == [("1001", ["vip"])]
    sales = purchases(tmp_path / "sales.parquet", pa.array([1.0, 2.5, 3.0], pa.float64()),
                      pa.array([8.5, 1001.0, 1001.0], pa.float64()), [10.0, 5.0, 4.0])  # fmt: skip
    done = import_events(processor, sales)
    assert done.processed == 1
    assert done.rejected == [
        RejectedRow(2, "1", "invalid_row", f"member: 8.5 {WHOLE}"),
        RejectedRow(3, "2.5", "invalid_row", f"event_id: 2.5 {WHOLE}"),
    ]
    assert available(pdb, "1001") == 104  # row 4 only
    assert (count_members(pdb), [ref for ref, _ in members(pdb)]) == (1, ["1001"])
    assert processor.member_profile("8.5") is None
    assert_invariants(pdb, "shop")


def enrolled_as_before(processor: EventProcessor, tmp_path: Path) -> None:
    """What a members import before this reading enrolled from the float64 cell
    ``1001.0``: the member ``'1001.0'`` (its text, as a CSV cell ``1001.0`` still does)."""
    old = write_csv(tmp_path / "old.csv", ["member", "segments"], [["1001.0", "vip"]])
    assert import_members(processor, old, now=NOW).created == 1


@pytest.mark.parametrize("chunk", [1, 500])
def test_a_member_enrolled_as_1001_0_stays_the_member_of_1001(
    pdb: Database, tmp_path: Path, chunk: int
) -> None:
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    enrolled_as_before(processor, tmp_path)
    crm = parquet(tmp_path / "crm.parquet", {
        "member": pa.array([1001.0, None], pa.float64()), "segments": pa.array(["gold", "vip"]),
    })  # fmt: skip
    report = import_members(processor, crm, now=NOW, chunk=chunk)
    assert (report.created, report.updated, len(report.rejected)) == (0, 1, 1)
    assert members(pdb) == [("1001.0", ["gold"])]
    sales = purchases(tmp_path / "sales.parquet", pa.array(["s1", "s2"]),
                      pa.array([1001.0, 1001.0], pa.float64()), [10.0, 5.0])  # fmt: skip
    decimal = purchases(tmp_path / "dec.parquet", pa.array(["d1"]),
                        pa.array([Decimal("1001.00")], pa.decimal128(8, 2)), [7.0])  # fmt: skip
    assert import_events(processor, sales, chunk=chunk).processed == 2
    assert import_events(processor, decimal, chunk=chunk).processed == 1
    assert available(pdb, "1001.0") == 100 + 10 + 5 + 7  # one first-purchase bonus
    assert [ref for ref, _ in members(pdb)] == ["1001.0"]
    assert import_events(processor, sales, chunk=chunk).duplicates == 2
    assert import_members(processor, crm, now=NOW, chunk=chunk).unchanged == 1
    assert_invariants(pdb, "shop")


def test_a_text_cell_1001_never_names_the_member_1001_0(pdb: Database, tmp_path: Path) -> None:
    """Only a float or decimal column's cell was enrolled as ``'1001.0'``: a text cell
    ``1001`` (a CSV file, a text column) names ``'1001'``, as it always did and as the API
    does, so a member ``'1001.0'`` made from text today keeps its own id."""
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    enrolled_as_before(processor, tmp_path)
    header = ["event_id", "type", "member", "at", "amount"]
    till = write_csv(tmp_path / "till.csv", header, [["t1", "purchase", "1001", AT, "30"]])
    text = purchases(tmp_path / "text.parquet", pa.array(["t2"]), pa.array(["1001"]), [4.0])
    done = import_events(processor, till)
    assert (done.processed, done.rejected) == (1, [])
    assert import_events(processor, text).processed == 1
    crm = write_csv(tmp_path / "crm.csv", ["member", "segments"], [["1001", "gold"]])
    report = import_members(processor, crm, now=NOW)
    assert (report.created, report.updated, report.rejected) == (0, 1, [])
    assert members(pdb) == [("1001", ["gold"]), ("1001.0", ["vip"])]
    assert (available(pdb, "1001"), available(pdb, "1001.0")) == (134, 0)
    assert import_events(processor, till).duplicates == 1
    sales = purchases(tmp_path / "sales.parquet", pa.array(["s1"]),
                      pa.array([1001.0], pa.float64()), [5.0])  # fmt: skip
    assert import_events(processor, sales).processed == 1  # '1001' exists: the float is it
    assert (available(pdb, "1001"), available(pdb, "1001.0")) == (139, 0)
    assert_invariants(pdb, "shop")


def test_an_erased_1001_is_never_booked_on_1001_0(pdb: Database, tmp_path: Path) -> None:
    """``'1001'`` erased counts as held: a row of its erased history is refused as
    erased, never booked on the member ``'1001.0'`` an older import made."""
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    enrolled_as_before(processor, tmp_path)
    header = ["event_id", "type", "member", "at", "amount"]
    till = write_csv(tmp_path / "till.csv", header, [["t1", "purchase", "1001", AT, "30"]])
    assert import_events(processor, till).processed == 1
    with pdb.write() as conn:
        erase_member(conn, "shop", "1001", at=datetime.fromisoformat("2026-11-02T00:00:00+00:00"))
    sales = purchases(tmp_path / "sales.parquet", pa.array(["s1"]),
                      pa.array([1001.0], pa.float64()), [5.0])  # fmt: skip
    done = import_events(processor, sales)
    assert done.processed == 0
    assert [(r.row, r.key, r.code) for r in done.rejected] == [(2, "s1", "member_erased")]
    crm = parquet(tmp_path / "crm.parquet", {
        "member": pa.array([1001.0], pa.float64()), "segments": pa.array(["gold"]),
    })  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert [(r.row, r.key, r.code) for r in report.rejected] == [(2, "1001", "member_erased")]
    assert (report.created, report.updated) == (0, 0)
    assert [m for m in members(pdb) if not m[0].startswith("erased-")] == [("1001.0", ["vip"])]
    assert available(pdb, "1001.0") == 0
    assert_invariants(pdb, "shop")


def test_many_members_enrolled_as_decimals_are_looked_up_in_chunks(
    pdb: Database, tmp_path: Path
) -> None:
    """70,000 members ``'100001.0'``... (a whole CRM column an older members import
    enrolled): the import starts (PostgreSQL takes at most 65535 parameters a query) and
    each stays the member of its float cells."""
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    count = 70_000
    plain = write_csv(tmp_path / "plain.csv", ["member", "segments"], [["170000", "gold"]])
    assert import_members(processor, plain, now=NOW).created == 1  # (opens the program)
    refs = [f"{100_001 + i}.0" for i in range(count)]
    with pdb.write() as conn:  # (what the older import left, written at once)
        conn.execute(member_states.insert(), [
            {"program_id": "shop", "member_ref": ref, "segments": [], "attributes": {}}
            for ref in refs
        ])  # fmt: skip
        conn.execute(Member.__table__.insert(), [
            {"program_id": "shop", "ref": ref, "status": "active", "created_at": NOW}
            for ref in refs
        ])  # fmt: skip
    crm = parquet(tmp_path / "crm.parquet", {
        "member": pa.array([100_001.0, 170_000.0, 169_999.0], pa.float64()),
        "segments": pa.array(["vip", "vip", "vip"]),
    })  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert (report.created, report.updated, report.rejected) == (0, 3, [])
    with pdb.read() as conn:
        got = conn.execute(select(member_states.c.member_ref, member_states.c.segments).where(
            member_states.c.member_ref.in_(["100001.0", "100001", "170000", "170000.0",
                                            "169999", "169999.0"])
        ).order_by(member_states.c.member_ref)).all()  # fmt: skip
    assert [(ref, list(segments)) for ref, segments in got] == [
        ("100001.0", ["vip"]), ("169999.0", ["vip"]), ("170000", ["vip"]), ("170000.0", []),
    ]  # fmt: skip
    assert count_members(pdb) == count + 1


def test_members_1001_0_and_1001_both_enrolled_stay_apart(pdb: Database, tmp_path: Path) -> None:
    """A database where an older import already made both members: the import merges
    none; the cells of 1001 name ``'1001'``, the text ``1001.0`` names ``'1001.0'``."""
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    enrolled_as_before(processor, tmp_path)
    till = Event(id="t1", type="purchase", member="1001", at=datetime.fromisoformat(AT),
                 amount=Decimal(10))  # fmt: skip
    processor.process(till)  # the API enrols '1001', as the till names the person
    crm = parquet(tmp_path / "crm.parquet", {
        "member": pa.array([1001.0], pa.float64()), "segments": pa.array(["gold"]),
    })  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert (report.created, report.updated, report.rejected) == (0, 1, [])
    assert members(pdb) == [("1001", ["gold"]), ("1001.0", ["vip"])]
    sales = purchases(tmp_path / "sales.parquet", pa.array(["s1"]),
                      pa.array([1001.0], pa.float64()), [5.0])  # fmt: skip
    assert import_events(processor, sales).processed == 1
    assert (available(pdb, "1001"), available(pdb, "1001.0")) == (115, 0)


def test_a_float32_id_beyond_its_precision_is_refused_naming_row_and_column(
    pdb: Database, tmp_path: Path
) -> None:
    """A float32 column writes 16777217 as 16777216 (float16: 2049 as 2048): such a cell
    names no member for sure, so it is refused rather than read as the existing member
    16777216, whose points and profile would take another person's."""
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    seed = write_csv(tmp_path / "seed.csv", ["member", "segments"],
                     [["16777216", "alice"], ["2048", "carol"]])  # fmt: skip
    assert import_members(processor, seed, now=NOW).created == 2
    crm = parquet(tmp_path / "crm.parquet", {
        "member": pa.array(np.array([16777217, 16777215], np.float32)),
        "segments": pa.array(["bob", "dan"]),
    })  # fmt: skip
    report = import_members(processor, crm, now=NOW)
    assert (report.created, report.updated) == (1, 0)
    assert report.rejected == [RejectedRow(
        2, "16777216.0", "invalid_row", f"member: 16777216.0 {large('float32', 2**24)}"
    )]  # fmt: skip
    sales = parquet(tmp_path / "sales.parquet", {
        "event_id": pa.array(["e1", "e2"]), "type": pa.array(["purchase"] * 2),
        "member": pa.array(np.array([16777217, 16777215], np.float32)),
        "at": pa.array([AT] * 2), "amount": pa.array([50.0, 5.0], pa.float64()),
    })  # fmt: skip
    half = parquet(tmp_path / "half.parquet", {
        "event_id": pa.array(["h1"]), "type": pa.array(["purchase"]),
        "member": pa.array(np.array([2049], np.float16)), "at": pa.array([AT]),
        "amount": pa.array([7.0], pa.float64()),
    })  # fmt: skip
    done = import_events(processor, sales)
    assert done.processed == 1
    assert done.rejected == [RejectedRow(
        2, "e1", "invalid_row", f"member: 16777216.0 {large('float32', 2**24)}"
    )]  # fmt: skip
    done = import_events(processor, half)
    assert done.processed == 0
    assert done.rejected == [RejectedRow(
        2, "h1", "invalid_row", f"member: 2048.0 {large('float16', 2**11)}"
    )]  # fmt: skip
    assert members(pdb) == [("16777215", ["dan"]), ("16777216", ["alice"]), ("2048", ["carol"])]
    assert (available(pdb, "16777216"), available(pdb, "2048")) == (0, 0)
    assert available(pdb, "16777215") == 105  # e2 (5 and the first-purchase bonus)
    assert_invariants(pdb, "shop")
