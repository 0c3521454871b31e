"""A member a version before the import trimmed member cells enrolled with the spaces
of its cell (``' padded '``) stays the member of those cells after the upgrade: the
same file imported again is all duplicates (it was refused ``event_id_conflict``, the
member ``' padded '`` recorded, ``'padded'`` sent), and a new row of the same till
earns for ``' padded '`` (it enrolled a second member ``padded``, with a second
first-purchase bonus). A padded cell naming no member still enrols the trimmed id."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fidelite.engine import Event
from fidelite.ledger import Ledger, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, import_members
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: first, on: [purchase], when: "member.purchases == 0", fixed: 100}
"""
OLD = ["v1", "purchase", " padded ", "2026-11-05T10:00:00+01:00", "10"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def events_file(path: Path, rows: list[list[str]]) -> Path:
    return write_csv(path, ["event_id", "type", "member", "at", "amount"], rows)


def available(db: Database, member: str) -> int:
    return Ledger(db).balance("shop", member, "points", as_of="2026-12-31T00:00:00Z").available


def enrolled_as_before(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a version before the trimming recorded for row ``OLD``: the member
    ``' padded '`` as written (the id rule refusing spaces at either end is lifted for
    the while, as it was not applied then), with its purchase."""
    monkeypatch.setattr("fidelite.ledger.validation.member_id_problem", lambda _ref: None)
    event = Event(id="v1", type="purchase", member="padded", amount=Decimal(10),
                  at=datetime.fromisoformat(OLD[3]))  # fmt: skip
    EventProcessor(db, parse_program(PROGRAM)).process(event.model_copy(update={"member": OLD[2]}))
    monkeypatch.undo()


def test_an_upgraded_database_keeps_the_padded_member_of_its_cells(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrolled_as_before(pdb, monkeypatch)
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    assert available(pdb, " padded ") == 110
    again = import_events(processor, events_file(tmp_path / "old.csv", [OLD]))
    assert (again.processed, again.duplicates, again.rejected) == (0, 1, [])
    new = ["v2", "purchase", " padded ", "2026-12-01T10:00:00+01:00", "50"]
    later = import_events(processor, events_file(tmp_path / "new.csv", [new]))
    assert (later.processed, later.rejected) == (1, [])
    assert available(pdb, " padded ") == 160  # 50 more, no second first-purchase bonus
    assert processor.member_profile("padded") is None  # no second member
    crm = write_csv(tmp_path / "crm.csv", ["member", "segments"], [[" padded ", "vip"]])
    members = import_members(processor, crm, now=datetime.fromisoformat(new[3]))
    assert (members.created, members.updated, members.rejected) == (0, 1, [])
    profile = processor.member_profile(" padded ")
    assert profile is not None and (profile["segments"], profile["purchases"]) == (["vip"], 2)
    assert processor.member_profile("padded") is None
    # a padded cell of no enrolled member is read trimmed, as ever
    fresh = ["f1", "purchase", " fresh ", "2026-12-01T11:00:00+01:00", "5"]
    assert import_events(processor, events_file(tmp_path / "fresh.csv", [fresh])).processed == 1
    assert available(pdb, "fresh") == 105
    assert processor.member_profile(" fresh ") is None
    assert_invariants(pdb, "shop")


MIXED = [
    ["a1", "purchase", " padded ", "2026-12-01T10:00:00+01:00", "50"],
    ["a2", "purchase", "padded", "2026-12-01T11:00:00+01:00", "20"],
    ["a3", "purchase", " padded ", "2026-12-01T12:00:00+01:00", "30"],
]


@pytest.mark.parametrize("chunk", [1, 1000])
def test_padded_and_trimmed_cells_of_a_legacy_member_are_all_its_own_at_any_chunk(
    pdb: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A file mixing ``' padded '`` and ``padded`` cells: what the cells name is decided
    from the members the database held when the import started, never per chunk (the
    ``padded`` cell enrolled a second member when its chunk held no padded cell, and the
    re-run refused the padded rows ``event_id_conflict``)."""
    enrolled_as_before(pdb, monkeypatch)
    processor = EventProcessor(pdb, parse_program(PROGRAM))
    file = events_file(tmp_path / "mixed.csv", MIXED)
    first = import_events(processor, file, chunk=chunk)
    assert (first.processed, first.duplicates, first.rejected) == (3, 0, [])
    assert available(pdb, " padded ") == 110 + 50 + 20 + 30  # no second bonus
    assert processor.member_profile("padded") is None
    again = import_events(processor, file, chunk=chunk)
    assert (again.processed, again.duplicates, again.rejected) == (0, 3, [])
    assert available(pdb, " padded ") == 210
    crm = write_csv(tmp_path / "crm.csv", ["member", "segments"], [["padded", "vip"]])
    members = import_members(processor, crm, now=datetime.fromisoformat(MIXED[0][3]), chunk=chunk)
    assert (members.created, members.updated, members.rejected) == (0, 1, [])
    profile = processor.member_profile(" padded ")
    assert profile is not None and (profile["segments"], profile["purchases"]) == (["vip"], 4)
    assert processor.member_profile("padded") is None
    assert_invariants(pdb, "shop")
