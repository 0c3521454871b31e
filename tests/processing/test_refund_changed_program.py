"""A refund gives back the per-member cap its purchase used to the period the purchase's
trace recorded, when the program changed time zone in between (not to the period worked
out in the new zone). Through ``fidelite import events`` (the import's batch)
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


def test_refund_one_event_at_a_time_gives_the_cap_back_to_the_period_its_purchase_used(
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
