"""Bulk import after a member's erasure: re-running a file skips the erased member's
rows (recorded under the tombstone) and never brings the erased history back."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from fidelite.engine import Event
from fidelite.ledger import Ledger, assert_invariants
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor, Outcome
from fidelite.processing.importer import import_events, import_members, write_rejects
from fidelite.processing.recorded import Repeated, settle_duplicates
from fidelite.processing.tables import member_states
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: signup, on: [signup], fixed: 100}
"""

HEADER = ["event_id", "type", "member", "at", "amount", "refund_of"]
HISTORY = [
    ["e1", "signup", "ann", "2026-11-02T09:00:00+01:00", "", ""],
    ["e2", "purchase", "ann", "2026-11-02T10:00:00+01:00", "12.50", ""],
    ["e3", "purchase", "bob", "2026-11-03T10:00:00+01:00", "30.00", ""],
    ["e4", "refund", "ann", "2026-11-04T10:00:00+01:00", "2.50", "e2"],
    ["e5", "purchase", "ann", "2026-11-05T10:00:00+01:00", "7.00", ""],
]
ERASED_AT = datetime.fromisoformat("2026-11-20T09:00:00+00:00")
NO_REFUNDS = {"refunds": 0, "points_written_off": {}, "points_into_debt": {},
              "points_already_expired": {}}  # fmt: skip


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def processor(db: Database) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM))


def snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted: equal snapshots, nothing changed."""
    with db.read() as conn:
        names = sorted(inspect(conn).get_table_names())
        return {
            name: sorted(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{name}"')))
            for name in names
        }


def imported_and_erased(db: Database, tmp_path: Path) -> tuple[Path, int]:
    """The history imported, then ann erased; ann's member id."""
    history = write_csv(tmp_path / "history.csv", HISTORY)
    first = import_events(processor(db), history)
    assert first.summary() == {
        "rows": 5, "processed": 5, "duplicates": 0, "rejected": 0, "rejected_by_code": {},
        **NO_REFUNDS, "refunds": 1,
    }  # fmt: skip
    with db.write() as conn:
        erasure = erase_member(conn, "shop", "ann", reason="request 2026-118", at=ERASED_AT)
    assert erasure.tombstone == f"erased-{erasure.member_id}"
    return history, erasure.member_id


def member_refs(db: Database) -> list[str]:
    with db.read() as conn:
        rows = conn.execute(select(member_states.c.member_ref).order_by(member_states.c.member_ref))
        return [r[0] for r in rows]


def rejects_text(tmp_path: Path, report: Any) -> str:
    path = tmp_path / "rejects.csv"
    write_rejects(path, report.rejected)
    return path.read_bytes().decode("utf-8")


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "one_by_one"])
def test_import_rerun_after_erasure_skips_erased_rows(
    pdb: Database, tmp_path: Path, batch: bool
) -> None:
    history, member_id = imported_and_erased(pdb, tmp_path)
    before = snapshot(pdb)
    again = import_events(processor(pdb), history, batch=batch)
    assert again.summary() == {
        "rows": 5, "processed": 0, "duplicates": 5, "duplicates_erased": 4, "rejected": 0,
        "rejected_by_code": {}, **NO_REFUNDS,
    }  # fmt: skip
    assert again.rejected == []
    assert snapshot(pdb) == before
    assert member_refs(pdb) == ["bob", f"erased-{member_id}"]
    assert_invariants(pdb, "shop")


def test_import_rerun_after_erasure_in_small_chunks_skips_erased_rows(
    pdb: Database, tmp_path: Path
) -> None:
    history, _ = imported_and_erased(pdb, tmp_path)
    before = snapshot(pdb)
    again = import_events(processor(pdb), history, chunk=2)
    assert again.summary() == {
        "rows": 5, "processed": 0, "duplicates": 5, "duplicates_erased": 4, "rejected": 0,
        "rejected_by_code": {}, **NO_REFUNDS,
    }  # fmt: skip
    assert snapshot(pdb) == before


def test_import_row_of_erased_history_not_recorded_is_rejected(
    pdb: Database, tmp_path: Path
) -> None:
    _, member_id = imported_and_erased(pdb, tmp_path)
    before = snapshot(pdb)
    late = write_csv(tmp_path / "late.csv", [
        HISTORY[1],
        ["e6", "purchase", "ann", "2026-11-10T10:00:00+01:00", "20.00", ""],
        ["e7", "refund", "ann", "2026-11-11T10:00:00+01:00", "1.00", "e5"],
        ["e8", "purchase", "ann", "2026-11-20T09:00:00+00:00", "5.00", ""],  # the erasure's time
    ])  # fmt: skip
    report = import_events(processor(pdb), late)
    assert report.summary() == {
        "rows": 4, "processed": 0, "duplicates": 1, "duplicates_erased": 1, "rejected": 3,
        "rejected_by_code": {"member_erased": 3}, **NO_REFUNDS,
    }  # fmt: skip
    told = ("the member 'ann' was erased on 2026-11-20: an event dated at or before the "
            "erasure belongs to the erased history and is not imported (an event after it "
            "enrols the reference as a new member)")  # fmt: skip
    assert rejects_text(tmp_path, report) == (
        "row,event_id,code,message\r\n"
        f"3,e6,member_erased,{told}\r\n"
        f"4,e7,member_erased,{told}\r\n"
        f"5,e8,member_erased,{told}\r\n"
    )
    assert snapshot(pdb) == before
    assert member_refs(pdb) == ["bob", f"erased-{member_id}"]  # ann not enrolled again


def test_import_row_after_erasure_enrols_a_new_member(pdb: Database, tmp_path: Path) -> None:
    _, member_id = imported_and_erased(pdb, tmp_path)
    after = write_csv(tmp_path / "after.csv", [
        ["e9", "purchase", "ann", "2026-11-25T10:00:00+01:00", "40.00", ""],
    ])  # fmt: skip
    report = import_events(processor(pdb), after)
    assert report.summary() == {
        "rows": 1, "processed": 1, "duplicates": 0, "rejected": 0, "rejected_by_code": {},
        **NO_REFUNDS,
    }  # fmt: skip
    assert member_refs(pdb) == ["ann", "bob", f"erased-{member_id}"]
    balance = Ledger(pdb).balance("shop", "ann", "points", as_of="2026-12-01T00:00:00Z")
    assert balance.available == 40  # a new member: none of the erased one's points
    assert_invariants(pdb, "shop")


def test_import_erased_row_with_other_values_is_a_conflict_naming_no_member(
    pdb: Database, tmp_path: Path
) -> None:
    _, _ = imported_and_erased(pdb, tmp_path)
    before = snapshot(pdb)
    changed = write_csv(tmp_path / "changed.csv", [
        ["e2", "purchase", "ann", "2026-11-02T10:00:00+01:00", "13.50", ""],
        ["e5", "purchase", "carl", "2026-11-05T10:00:00+01:00", "7.00", ""],
    ])  # fmt: skip
    report = import_events(processor(pdb), changed)
    assert report.summary() == {
        "rows": 2, "processed": 0, "duplicates": 0, "rejected": 2,
        "rejected_by_code": {"event_id_conflict": 2}, **NO_REFUNDS,
    }  # fmt: skip
    messages = [(r.row, r.key, r.message) for r in report.rejected]
    # the erased member's own event: the amount of the erased history is not told
    assert messages[0] == (2, "e2", "event 'e2' is recorded with other values (amount '13.5000' "
                           "sent, not as recorded for a member erased since): a new event "
                           "needs a new id; to repeat the event, send it as it was first "
                           "sent")  # fmt: skip
    # recorded for an erased member, sent for another: named as erased, not by its tombstone
    assert messages[1] == (3, "e5", "event 'e5' is recorded with other values (member (erased) "
                           "recorded, 'carl' sent): a new event needs a new id; to repeat the "
                           "event, send it as it was first sent")  # fmt: skip
    assert snapshot(pdb) == before


def test_settle_duplicates_answers_erased_member_event_as_repeated(
    pdb: Database, tmp_path: Path
) -> None:
    _, member_id = imported_and_erased(pdb, tmp_path)
    before = snapshot(pdb)
    sent = Event(id="e2", type="purchase", member="ann", amount=Decimal("12.50"),
                 at=datetime.fromisoformat("2026-11-02T10:00:00+01:00"))  # fmt: skip
    p = processor(pdb)
    with pdb.write() as conn:
        answer = p.process(sent, conn=conn)
        assert answer.outcome is Outcome.duplicate
        settled = settle_duplicates(conn, "shop", [sent], [answer])
    assert len(settled) == 1 and isinstance(settled[0], Repeated)
    repeated = settled[0]
    # the reference sent, never its tombstone, and nothing of the erased history (points,
    # transactions, tier changes, trace): the answer must not link the two
    assert (
        repeated.event_id,
        repeated.member,
        repeated.points,
        repeated.transactions,
        repeated.tier_changes,
        repeated.trace,
    ) == ("e2", "ann", {}, [], [], None)
    assert f"erased-{member_id}" not in repr(repeated)
    assert snapshot(pdb) == before


MEMBER_HEADER = ["member", "joined_at", "birth_date", "segments", "attributes"]
CRM = [
    ["ann", "2026-10-01T10:00:00+02:00", "1990-05-17", "newsletter", '{"city": "Lyon"}'],
    ["bob", "", "1985-01-02", "", ""],
]


def write_members(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MEMBER_HEADER)
        writer.writerows(rows)
    return path


def test_import_members_rerun_after_erasure_does_not_enrol_erased_member(
    pdb: Database, tmp_path: Path
) -> None:
    _, member_id = imported_and_erased(pdb, tmp_path)
    crm = write_members(tmp_path / "crm.csv", [*CRM, ["ann", "", "", "", '{"city": "Lyon"}']])
    before = snapshot(pdb)
    report = import_members(
        processor(pdb), crm, now=datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    )
    assert report.summary() == {
        "rows": 3, "created": 0, "updated": 1, "unchanged": 0, "rejected": 2,
        "rejected_by_code": {"member_erased": 2},
    }  # fmt: skip
    told = ("the member 'ann' was erased on 2026-11-20: a member row without a joined_at "
            "after the erasure does not enrol the reference again")  # fmt: skip
    assert [(r.row, r.key, r.code, r.message) for r in report.rejected] == [
        (2, "ann", "member_erased", told),
        (4, "ann", "member_erased", told),
    ]
    assert member_refs(pdb) == ["bob", f"erased-{member_id}"]  # ann not enrolled again
    after = snapshot(pdb)
    assert {name for name in before if before[name] != after[name]} == {"member_states"}  # bob


def test_import_members_row_joined_after_erasure_enrols_a_new_member(
    pdb: Database, tmp_path: Path
) -> None:
    _, member_id = imported_and_erased(pdb, tmp_path)
    crm = write_members(tmp_path / "crm.csv", [
        ["ann", "2026-11-21T10:00:00+01:00", "", "", '{"city": "Paris"}'],
    ])  # fmt: skip
    report = import_members(
        processor(pdb), crm, now=datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    )
    assert report.summary() == {
        "rows": 1, "created": 1, "updated": 0, "unchanged": 0, "rejected": 0,
        "rejected_by_code": {},
    }  # fmt: skip
    assert member_refs(pdb) == ["ann", "bob", f"erased-{member_id}"]
    ann = processor(pdb).member_profile("ann")
    assert ann is not None and (ann["attributes"], ann["birth_date"]) == ({"city": "Paris"}, None)
    # the reference, enrolled anew, is a member like any other: a file naming it updates it
    again = import_members(processor(pdb), write_members(tmp_path / "crm2.csv", [CRM[0]]),
                           now=datetime.fromisoformat("2026-12-02T00:00:00+00:00"))  # fmt: skip
    assert (again.summary()["updated"], again.summary()["rejected"]) == (1, 0)
