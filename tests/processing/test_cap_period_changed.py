"""A per-member cap whose period the program changes keeps counting what the rule already
gave: usage recorded under a label of the old kind whose days overlap the current period
counts against it (a month inside the new year, a week straddling two months against
both), so a member never gets more than the new cap. Through the import's batch path and
the processor one event at a time, on SQLite and PostgreSQL; a re-run changes nothing;
a refund gives back to the label its purchase recorded."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.processing.processor import Outcome
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - id: capped
    on: [purchase]
    per_amount: {points: 1}
    cap_per_member: {points: %d, period: %s}
"""
HEAD = "event_id,type,member,at,amount,refund_of\n"


def earned(db: Database) -> dict[str, int]:
    """Points each event earned, less what refunds reversed."""
    with db.read() as conn:
        rows = conn.execute(text("SELECT event_id, points, reversed FROM event_earnings"))
        return {r.event_id: int(r.points) - int(r.reversed or 0) for r in rows}


def usage(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT member_ref, period, points FROM rule_usage "
                                 "ORDER BY member_ref, period"))  # fmt: skip
        return [tuple(r) for r in rows]


def given(db: Database, member: str) -> int:
    """Points the member's events earned in all (refunded ones included)."""
    with db.read() as conn:
        found = conn.execute(
            text(
                "SELECT coalesce(sum(e.points), 0) FROM event_earnings e JOIN processed_events p"
                " ON p.program_id = e.program_id AND p.event_id = e.event_id"
                " WHERE p.member_ref = :m"
            ),
            {"m": member},
        )
        return int(found.scalar_one())


def import_file(db: Database, tmp_path: Path, points: int, period: str, rows: str) -> Any:
    path = tmp_path / f"{period}-{points}-{len(rows)}.csv"
    path.write_text(HEAD + rows, encoding="utf-8")
    processor = EventProcessor(db, parse_program(PROGRAM % (points, period)))
    return import_events(processor, path, batch=True)


def event(event_id: str, kind: str, member: str, at: str, amount: int, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at,
                                 "amount": Decimal(amount), **extra})  # fmt: skip


def test_import_month_cap_made_yearly_counts_the_month_given(pdb: Database, tmp_path: Path) -> None:
    import_file(pdb, tmp_path, 50, "month", "a1,purchase,ann,2026-11-05T10:00:00+01:00,200,\n")
    assert earned(pdb) == {"a1": 50}
    # the cap becomes 100 a year: 50 already given in 2026-11 count against 2026; two
    # purchases in one batch: the second sees what the first gave
    year = ("a2,purchase,ann,2026-11-20T10:00:00+01:00,200,\n"
            "a3,purchase,ann,2026-12-10T10:00:00+01:00,200,\n")  # fmt: skip
    import_file(pdb, tmp_path, 100, "year", year)
    assert earned(pdb) == {"a1": 50, "a2": 50}  # not a2 100: 150 in 2026 under 100 a year
    assert usage(pdb) == [("ann", "2026", 50), ("ann", "2026-11", 50)]
    before = (earned(pdb), usage(pdb))
    again = import_file(pdb, tmp_path, 100, "year", year)
    assert again.duplicates == 2
    assert (earned(pdb), usage(pdb)) == before
    # a full refund of a1 gives its 50 back to 2026-11, the label it recorded: 50 left in 2026
    import_file(pdb, tmp_path, 100, "year", "r1,refund,ann,2026-12-11T10:00:00+01:00,200,a1\n"
                "a4,purchase,ann,2026-12-12T10:00:00+01:00,200,\n")  # fmt: skip
    assert usage(pdb) == [("ann", "2026", 100), ("ann", "2026-11", 0)]
    assert given(pdb, "ann") == 150 and earned(pdb)["a4"] == 50
    # a new year: the 2026 labels overlap nothing of 2027
    import_file(pdb, tmp_path, 100, "year", "a5,purchase,ann,2027-01-02T10:00:00+01:00,500,\n")
    assert earned(pdb)["a5"] == 100


def test_import_week_straddling_two_months_counts_against_both(
    pdb: Database, tmp_path: Path
) -> None:
    # ISO week 2026-W44 runs from Monday 26 October to Sunday 1 November
    import_file(pdb, tmp_path, 30, "week", "w1,purchase,bob,2026-10-27T10:00:00+01:00,100,\n"
                "w2,purchase,cy,2026-11-01T10:00:00+01:00,100,\n")  # fmt: skip
    assert earned(pdb) == {"w1": 30, "w2": 30}
    month = ("m1,purchase,bob,2026-10-30T10:00:00+01:00,100,\n"
             "m2,purchase,bob,2026-11-03T10:00:00+01:00,100,\n"
             "m3,purchase,cy,2026-10-29T10:00:00+01:00,100,\n"
             "m4,purchase,cy,2026-11-03T10:00:00+01:00,100,\n")  # fmt: skip
    import_file(pdb, tmp_path, 40, "month", month)
    # W44's 30 count against October and November alike: 10 left in each, for bob and cy
    assert earned(pdb) == {"w1": 30, "w2": 30, "m1": 10, "m2": 10, "m3": 10, "m4": 10}
    # and once made "ever", everything given counts: 50 of 100 for bob
    import_file(pdb, tmp_path, 100, "ever", "e1,purchase,bob,2027-05-01T10:00:00+02:00,100,\n")
    assert earned(pdb)["e1"] == 50
    assert given(pdb, "bob") == 100


def test_one_at_a_time_month_cap_made_yearly_counts_the_month_given(pdb: Database) -> None:
    monthly = EventProcessor(pdb, parse_program(PROGRAM % (50, "month")))
    first = monthly.process(event("a1", "purchase", "ann", "2026-11-05T10:00:00+01:00", 200))
    assert [e.points for e in first.decision.earnings] == [50]
    yearly = EventProcessor(pdb, parse_program(PROGRAM % (100, "year")))
    second = yearly.process(event("a2", "purchase", "ann", "2026-11-20T10:00:00+01:00", 200))
    assert [e.points for e in second.decision.earnings] == [50]
    note = [t.note for t in second.decision.trace if t.rule == "capped"]
    assert note == ["200 capped at 50 left for 2026"]
    third = yearly.process(event("a3", "purchase", "ann", "2026-12-10T10:00:00+01:00", 200))
    assert third.decision.earnings == []
    assert usage(pdb) == [("ann", "2026", 50), ("ann", "2026-11", 50)]
    before = (earned(pdb), usage(pdb))
    again = yearly.process(event("a2", "purchase", "ann", "2026-11-20T10:00:00+01:00", 200))
    assert again.outcome is Outcome.duplicate
    assert (earned(pdb), usage(pdb)) == before
    yearly.process(event("r1", "refund", "ann", "2026-12-11T10:00:00+01:00", 200, refund_of="a1"))
    assert usage(pdb) == [("ann", "2026", 50), ("ann", "2026-11", 0)]
    last = yearly.process(event("a4", "purchase", "ann", "2026-12-12T10:00:00+01:00", 200))
    assert [e.points for e in last.decision.earnings] == [50]
    assert given(pdb, "ann") == 150
