"""The members import's fast path (a chunk's members read, decided and written at once,
:mod:`fidelite.processing.members_import`) stores what saving the rows one at a time
stores: the same profiles, ledger members, enrolment records and webhook events, the
same counts and rejected rows. Each file is imported into two programs of one database,
``shop`` through the fast path and ``twin`` one row at a time (``batch=False``), and the
two are compared, besides the exact values expected."""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from fidelite.ledger import assert_invariants
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor, MemberProfile, importer
from fidelite.processing.importer import MemberImportReport, import_members
from fidelite.processing.tables import member_states
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import IdempotencyRecord, Member
from fidelite.webhooks.tables import outbox

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  metric: spend
  levels:
    - {id: basic, name: Basic, threshold: 0}
    - {id: gold, name: Gold, threshold: 500}
"""
PROGRAMS = ("shop", "twin")  # the fast path, one row at a time
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
ENROLLED = datetime(2025, 6, 1, 8, tzinfo=UTC)
ERASED_AT = datetime(2026, 11, 20, 9, tzinfo=UTC)
HEADER = ["member", "joined_at", "birth_date", "segments", "attributes"]
ROWS = [  # rows 2-13; chunks of 5: rows 2-6, 7-11, 12-13
    ["ann", "2024-03-01T10:00:00+01:00", "1990-05-17", "vip;newsletter", '{"city": "Lyon"}'],
    ["bob", "", "", "regulars", ""],
    ["dan", "", "", "VIP", ""],  # a bad row in the middle of the chunk
    ["ann", "", "", "regulars", ""],  # listed again in its chunk: keeps city, birth date
    ["eve", "", "", "vip", ""],  # erased, no joined_at after the erasure
    ["zed", "2026-11-25T10:00:00+00:00", "", "", '{"n": 1}'],  # erased, joined after
    ["cid", "", "", "", ""],
    ["old", "", "1850-06-01", "", ""],  # the birth date it has, before 1900: no change
    ["ann", "2099-01-01T00:00:00+00:00", "", "", ""],  # joined_at ignored: exists
    ["new", "2099-01-01T00:00:00+00:00", "", "", ""],  # joins in the future
    ["zed", "", "1999-12-31", "", ""],
    ["cid", "", "1850-06-01", "", ""],  # before 1900, not its own
]
SUMMARY = {
    "rows": 12, "created": 2, "updated": 3, "unchanged": 3,
    "listed_again": {"rows": 3, "first_rows": [5, 10, 12]},
    "rejected": 4, "rejected_by_code": {"invalid_row": 3, "member_erased": 1},
}  # fmt: skip
RERUN = {**SUMMARY, "created": 0, "updated": 2, "unchanged": 6}


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def processor(db: Database, pid: str) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM.replace("id: shop", f"id: {pid}")))


def prepared(db: Database, pid: str) -> None:
    """bob, cid and old enrolled (old with a birth date stored before the 1900 limit, as
    an older version kept it), eve and zed enrolled then erased."""
    p = processor(db, pid)
    p.enrol("bob", at=ENROLLED, profile=MemberProfile(["staff"], {"city": "Lyon"},
                                                      date(1980, 1, 2)))  # fmt: skip
    for ref in ("cid", "old", "eve", "zed"):
        p.enrol(ref, at=ENROLLED)
    with db.write() as conn:
        conn.execute(update(member_states).where(
            member_states.c.program_id == pid, member_states.c.member_ref == "old"
        ).values(birth_date=date(1850, 6, 1)))  # fmt: skip
        for ref in ("eve", "zed"):
            erase_member(conn, pid, ref, at=ERASED_AT)


def last_event(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(outbox.c.id).order_by(outbox.c.id.desc())).scalar() or 0)


def stored(db: Database, pid: str, since: int) -> dict[str, Any]:
    """What the import wrote for ``pid``: member states, ledger members and enrolment
    records (without the erased members' tombstones, which differ by member id), and
    the webhook events after ``since``, in order."""
    with db.read() as conn:
        states = [
            {k: v for k, v in row._mapping.items() if k != "program_id"}
            for row in conn.execute(select(member_states).where(
                member_states.c.program_id == pid, ~member_states.c.member_ref.like("erased-%")
            ).order_by(member_states.c.member_ref))
        ]  # fmt: skip
        members = conn.execute(select(Member.ref, Member.status).where(
            Member.program_id == pid, ~Member.ref.like("erased-%")
        ).order_by(Member.ref)).all()  # fmt: skip
        records = conn.execute(select(IdempotencyRecord.key, IdempotencyRecord.request_hash)
                               .where(IdempotencyRecord.program_id == pid)
                               .order_by(IdempotencyRecord.key)).all()  # fmt: skip
        events = conn.execute(select(outbox.c.event_type, outbox.c.member_ref, outbox.c.payload)
                              .where(outbox.c.program_id == pid, outbox.c.id > since)
                              .order_by(outbox.c.id)).all()  # fmt: skip
    return {"states": states, "members": [tuple(m) for m in members],
            "records": [tuple(r) for r in records],
            "events": [tuple(e) for e in events]}  # fmt: skip


def rejected(report: MemberImportReport) -> list[tuple[int, str, str, str]]:
    return [(r.row, r.key, r.code, r.message) for r in report.rejected]


def both(db: Database, file: Path, chunk: int = 5) -> list[MemberImportReport]:
    return [import_members(processor(db, pid), file, now=NOW, chunk=chunk, batch=pid == "shop")
            for pid in PROGRAMS]  # fmt: skip


def rows_alone(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many rows of each program were saved on their own (the single path)."""
    counts = dict.fromkeys(PROGRAMS, 0)
    single = importer._save_member

    def counted(processor: EventProcessor, *args: Any, **kwargs: Any) -> Any:
        counts[processor.program.id] += 1
        return single(processor, *args, **kwargs)

    monkeypatch.setattr(importer, "_save_member", counted)
    return counts


def test_a_chunk_with_a_bad_row_a_member_listed_twice_and_erased_references(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for pid in PROGRAMS:
        prepared(pdb, pid)
    since = last_event(pdb)
    file = write(tmp_path / "crm.csv", ROWS)
    alone = rows_alone(monkeypatch)
    fast, single = both(pdb, file)
    assert alone == {"shop": 0, "twin": 12}  # every chunk of shop took the fast path
    assert fast.summary() == single.summary() == SUMMARY
    erased = ("the member 'eve' was erased on 2026-11-20: a member row without a joined_at "
              "after the erasure does not enrol the reference again")  # fmt: skip
    assert rejected(fast) == rejected(single) == [
        (4, "dan", "invalid_row", "segments: 'VIP' is not a segment name (lower-case letters, "
         "digits and _, starting with a letter, at most 64 characters, as rules write them)"),
        (6, "eve", "member_erased", erased),
        (11, "new", "invalid_row", "joined_at: 2099-01-01T00:00:00+00:00 is in the future: later "
         "than now (2031-01-01T00:00:00+00:00) plus the program's tolerance of 5 minute(s) "
         "(future_tolerance_minutes)"),
        (13, "cid", "invalid_row", "birth_date: 1850-06-01 is before 1900-01-01, the earliest "
         "birth date accepted (a placeholder for an unknown date is no birth date: leave it "
         "empty)"),
    ]  # fmt: skip
    shop, twin = stored(pdb, "shop", since), stored(pdb, "twin", since)
    assert shop == twin
    joined_ann = datetime(2024, 3, 1, 9, tzinfo=UTC)
    joined_zed = datetime(2026, 11, 25, 10, tzinfo=UTC)
    profiles = {s["member_ref"]: (s["segments"], s["attributes"], s["birth_date"],
                                  s["joined_at"], s["tier"], s["tier_since"])
                for s in shop["states"]}  # fmt: skip
    assert profiles == {
        "ann": (["regulars"], {"city": "Lyon"}, date(1990, 5, 17), joined_ann, "basic", joined_ann),
        "bob": (["regulars"], {"city": "Lyon"}, date(1980, 1, 2), ENROLLED, "basic", ENROLLED),
        "cid": ([], {}, None, ENROLLED, "basic", ENROLLED),
        "old": ([], {}, date(1850, 6, 1), ENROLLED, "basic", ENROLLED),
        "zed": ([], {"n": 1}, date(1999, 12, 31), joined_zed, "basic", joined_zed),
    }  # fmt: skip
    assert shop["members"] == [("ann", "active"), ("bob", "active"), ("cid", "active"),
                               ("old", "active"), ("zed", "active")]  # fmt: skip
    assert [key for key, _ in shop["records"]] == [
        "member:ann", "member:bob", "member:cid", "member:old", "member:zed"]  # fmt: skip
    assert shop["events"] == [
        ("member.created", "ann", {"member": "ann", "joined_at": "2024-03-01T10:00:00+01:00"}),
        ("member.created", "zed", {"member": "zed", "joined_at": "2026-11-25T10:00:00+00:00"}),
    ]
    for pid in PROGRAMS:
        assert_invariants(pdb, pid)
    # a re-run: rows of a member listed twice that differ count as updated again
    fast, single = both(pdb, file)
    assert fast.summary() == single.summary() == RERUN
    assert rejected(fast) == rejected(single)
    assert stored(pdb, "shop", since) == stored(pdb, "twin", since) == shop


def test_a_chunk_the_fast_path_does_not_take_is_saved_row_by_row(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tombstone named as a reference, a member the ledger knows and the program does
    not: the chunk is saved one row at a time, as before, its other rows included."""
    tombstones = []
    for pid in PROGRAMS:
        prepared(pdb, pid)
        processor(pdb, pid).ledger.create_member(pid, "led")  # the ledger's only
        with pdb.read() as conn:
            tombstones.append(conn.execute(select(Member.ref).where(
                Member.program_id == pid, Member.status == "erased").order_by(Member.id)
            ).scalars().first())  # fmt: skip
    since = last_event(pdb)
    alone = rows_alone(monkeypatch)
    for pid, tombstone in zip(PROGRAMS, tombstones, strict=True):
        rows = [["led", "", "", "vip", ""], [str(tombstone), "", "", "vip", ""],
                ["ann", "", "", "", ""], ["ann", "", "", "staff", ""]]  # fmt: skip
        report = import_members(processor(pdb, pid), write(tmp_path / f"{pid}.csv", rows),
                                now=NOW, batch=pid == "shop")  # fmt: skip
        assert report.summary() == {
            "rows": 4, "created": 2, "updated": 1, "unchanged": 0,
            "listed_again": {"rows": 1, "first_rows": [5]},
            "rejected": 1, "rejected_by_code": {"member_erased": 1},
        }  # fmt: skip
        assert [(r.row, r.key, r.code) for r in report.rejected] == [
            (3, tombstone, "member_erased")]  # fmt: skip
    assert alone == {"shop": 4, "twin": 4}
    shop, twin = stored(pdb, "shop", since), stored(pdb, "twin", since)
    assert shop == twin
    assert {s["member_ref"]: s["segments"] for s in shop["states"]} == {
        "ann": ["staff"], "bob": ["staff"], "cid": [], "led": ["vip"], "old": []}  # fmt: skip
    assert [(e[0], e[1]) for e in shop["events"]] == [
        ("member.created", "led"), ("member.created", "ann")]  # fmt: skip
    for pid in PROGRAMS:
        assert_invariants(pdb, pid)


def test_two_imports_of_the_same_new_members_at_once_enrol_each_once(
    pdb: Database, tmp_path: Path
) -> None:
    """Two runs of a file of new members at the same time (PostgreSQL: the second waits
    for the first's chunk to commit, then finds its members enrolled): each member is
    enrolled once, with one webhook event, and every row is counted once per run."""
    rows = [[f"m{i:03d}", "", "", "vip" if i % 2 else "staff", ""] for i in range(300)]
    file = write(tmp_path / "crm.csv", rows)
    since = last_event(pdb)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(import_members, processor(pdb, "shop"), file, now=NOW, chunk=100)
                for _ in range(2)]  # fmt: skip
        reports = [run.result().summary() for run in runs]
    assert [r["created"] + r["unchanged"] for r in reports] == [300, 300]
    assert sum(r["created"] for r in reports) == 300
    assert [(r["rows"], r["updated"], r["rejected"]) for r in reports] == [(300, 0, 0)] * 2
    shop = stored(pdb, "shop", since)
    assert [(s["member_ref"], s["segments"]) for s in shop["states"]] == [
        (f"m{i:03d}", ["vip" if i % 2 else "staff"]) for i in range(300)]  # fmt: skip
    assert [m for m, _ in shop["members"]] == [f"m{i:03d}" for i in range(300)]
    assert sorted(e[1] for e in shop["events"]) == [f"m{i:03d}" for i in range(300)]
    assert_invariants(pdb, "shop")
