"""A refund gives back the per-member cap and the campaign budget its purchase used, as
the purchase's trace recorded them, when the program changed in between: another time
zone (the cap's period is the purchase's, not the one worked out in the new zone), a
budget added after the purchase (it gets nothing back: the purchase spent none of it, so
the budget is never overspent). Through ``fidelite import events`` (the import's batch)
and the processor one event at a time, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite
from tests.conftest import BACKENDS, make_database

DAILY = """\
id: tzshop
name: T
time_zone: %s
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - id: daily
    on: [purchase]
    fixed: 10
    cap_per_member: {points: 10, period: day}
"""
BONUS = """\
id: bshop
name: B
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - id: bonus
    on: [purchase]
    fixed: 100
"""
HEAD = "event_id,type,member,at,amount,refund_of\n"


def earned(db: Database) -> dict[str, int]:
    """Points each purchase earned (none: no row)."""
    with db.read() as conn:
        rows = conn.execute(text("SELECT event_id, points, reversed FROM event_earnings"))
        return {r.event_id: int(r.points) for r in rows}


def counters(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with db.read() as conn:
        usage = conn.execute(text("SELECT member_ref, rule_id, period, points FROM rule_usage "
                                  "ORDER BY member_ref, rule_id, period")).all()  # fmt: skip
        budgets = conn.execute(text("SELECT rule_id, used FROM rule_budgets")).all()
    return [tuple(r) for r in usage], [tuple(r) for r in budgets]


def run(tmp_path: Path, db: str, name: str, program: str, rows: str) -> None:
    (tmp_path / f"{name}.yaml").write_text(program, encoding="utf-8")
    (tmp_path / f"{name}.csv").write_text(HEAD + rows, encoding="utf-8")
    fidelite("import", "events", tmp_path / f"{name}.csv", "-p", tmp_path / f"{name}.yaml",
             db=db)  # fmt: skip


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    found = make_database(request.param, request, tmp_path)
    yield found
    found.dispose()


def test_import_refund_gives_the_cap_back_to_the_period_its_purchase_used(
    database: Database, tmp_path: Path
) -> None:
    db = database.url
    # 23:30 UTC on 5 December is 6 December in Paris: the cap counted q1 on 2026-12-06
    run(tmp_path, db, "paris", DAILY % "Europe/Paris",
        "q1,purchase,ivy,2026-12-05T23:30:00Z,10,\n")  # fmt: skip
    assert counters(database) == ([("ivy", "daily", "2026-12-06", 10)], [])
    run(tmp_path, db, "utc", DAILY % "UTC", "qr,refund,ivy,2026-12-06T09:00:00Z,10,q1\n"
        "q2,purchase,ivy,2026-12-06T10:00:00Z,10,\n")  # fmt: skip
    assert earned(database) == {"q1": 10, "q2": 10}  # not 0: "capped at 0 left for 2026-12-06"
    assert counters(database) == ([("ivy", "daily", "2026-12-06", 10)], [])


def test_import_refund_of_a_purchase_made_before_its_budget_gives_back_none(
    database: Database, tmp_path: Path
) -> None:
    db = database.url
    run(tmp_path, db, "b1", BONUS, "x1,purchase,eve,2026-12-01T10:00:00Z,10,\n")
    run(
        tmp_path,
        db,
        "b2",
        BONUS + "    budget: 150\n",
        "x2,purchase,fay,2026-12-02T10:00:00Z,10,\nx3,purchase,gus,2026-12-02T11:00:00Z,10,\n"
        "xr,refund,eve,2026-12-03T10:00:00Z,10,x1\nx4,purchase,hal,2026-12-04T10:00:00Z,10,\n",
    )
    # fay 100 and gus the 50 left; eve's refund gives back none of the budget (x1 spent
    # none of it), so hal gets nothing: 150 given against the budget of 150, not 250
    assert earned(database) == {"x1": 100, "x2": 100, "x3": 50}
    assert counters(database) == ([], [("bonus", 150)])


def test_refund_one_event_at_a_time_gives_back_only_what_its_purchase_took(
    database: Database,
) -> None:
    def event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
        return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at,
                                     "amount": Decimal(10), **extra})  # fmt: skip

    paris = EventProcessor(database, parse_program(DAILY % "Europe/Paris"))
    paris.process(event("q1", "purchase", "ivy", "2026-12-05T23:30:00Z"))
    utc = EventProcessor(database, parse_program(DAILY % "UTC"))
    utc.process(event("qr", "refund", "ivy", "2026-12-06T09:00:00Z", refund_of="q1"))
    assert counters(database) == ([("ivy", "daily", "2026-12-06", 0)], [])
    q2 = utc.process(event("q2", "purchase", "ivy", "2026-12-06T10:00:00Z"))
    assert [(e.currency, e.points) for e in q2.decision.earnings] == [("points", 10)]

    budgeted = parse_program(BONUS.replace("bshop", "cshop") + "    budget: 150\n")
    EventProcessor(database, parse_program(BONUS.replace("bshop", "cshop"))).process(
        event("y1", "purchase", "eve", "2026-12-01T10:00:00Z"))  # fmt: skip
    later = EventProcessor(database, budgeted)
    for event_id, member in (("y2", "fay"), ("y3", "gus")):
        later.process(event(event_id, "purchase", member, "2026-12-02T10:00:00Z"))
    # a half refund of y2 (100 from the budget) gives back 50; then the refund of y1, none
    later.process(event("yr2", "refund", "fay", "2026-12-03T09:00:00Z", refund_of="y2")
                  .model_copy(update={"amount": Decimal(5)}))  # fmt: skip
    later.process(event("yr1", "refund", "eve", "2026-12-03T10:00:00Z", refund_of="y1"))
    with database.read() as conn:
        used = conn.execute(text("SELECT used FROM rule_budgets WHERE program_id = 'cshop'"))
        assert used.scalar_one() == 100
    last = later.process(event("y4", "purchase", "hal", "2026-12-04T10:00:00Z"))
    assert [(e.currency, e.points) for e in last.decision.earnings] == [("points", 50)]
