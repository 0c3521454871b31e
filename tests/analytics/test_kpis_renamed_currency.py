"""``metrics program-kpis`` with a program file whose currency was renamed since the
program was opened on the database (``points`` to ``pts``): without ``--currency`` it
reports the first of the database's currencies that the file declares, valued by the
file; when the file declares none of them, it says which currencies the database holds
and which the file declares. SQLite file and PostgreSQL, exact values."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from fidelite.analytics.errors import InputError
from fidelite.analytics.kpis import program_kpis
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite

PROGRAM = """\
id: cafe
name: Cafe
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
RENAMED = PROGRAM.replace("{id: points, name: Points, value: 0.01}",
                          "{id: pts, name: Points, value: 0.02}")  # fmt: skip


def buy(event_id: str, member: str, amount: int, at: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at, amount=Decimal(amount))


def test_the_files_currency_held_by_the_database_is_reported(db: Database) -> None:
    """Opened with points (100 earned in January), then run with the renamed file (pts:
    30 earned in February): the report is in pts, valued at the file's 0.02."""
    EventProcessor(db, parse_program(PROGRAM)).process(buy("p1", "ann", 100,
                                                          "2024-01-05T10:00:00+00:00"))  # fmt: skip
    EventProcessor(db, parse_program(RENAMED)).process(buy("p2", "ann", 30,
                                                          "2024-02-05T10:00:00+00:00"))  # fmt: skip
    result = program_kpis(db.url, "cafe", program=parse_program(RENAMED), program_file="p.yaml")
    facts = result.parameters
    assert (facts["currency"], facts["point_value"]) == ("pts", Decimal("0.02"))
    assert facts["point_value_from"] == "program file p.yaml"
    assert [(r["period"], r["points_earned"], r["points_outstanding"], r["liability"])
            for r in result.rows] == [("2024-01", 0, 0, 0.0), ("2024-02", 30, 30, 0.6)]  # fmt: skip
    # --currency still reports the old currency, valued by --point-value
    old = program_kpis(db.url, "cafe", currency="points", value=Decimal("0.01"),
                       program=parse_program(RENAMED), program_file="p.yaml")  # fmt: skip
    assert [(r["period"], r["points_earned"]) for r in old.rows] == [
        ("2024-01", 100), ("2024-02", 0)]  # fmt: skip


def test_no_currency_in_common_names_both_lists(db: Database) -> None:
    EventProcessor(db, parse_program(PROGRAM)).process(buy("p1", "ann", 100,
                                                          "2024-01-05T10:00:00+00:00"))  # fmt: skip
    with pytest.raises(InputError) as raised:
        program_kpis(db.url, "cafe", program=parse_program(RENAMED), program_file="p.yaml")
    assert str(raised.value).endswith(
        "the program file declares no currency 'points' (it declares pts; the database "
        "holds points): give --point-value, or --currency with one of both"
    )


def test_cli_reports_the_renamed_currency(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    program = tmp_path / "p.yaml"
    program.write_text(PROGRAM)
    events = tmp_path / "e.csv"
    events.write_text(
        "event_id,type,member,at,amount\np1,purchase,b,2024-01-05T10:00:00+00:00,100\n"
    )
    fidelite("db", "upgrade", "--db", url)
    fidelite("import", "events", events, "-p", program, db=url)
    program.write_text(RENAMED)
    events.write_text(
        "event_id,type,member,at,amount\np2,purchase,b,2024-02-05T10:00:00+00:00,30\n"
    )
    fidelite("import", "events", events, "-p", program, db=url)
    out = fidelite("metrics", "program-kpis", "--db", url, "-P", program, "-f", "json")
    answer = json.loads(out.stdout)
    assert answer["parameters"]["currency"] == "pts"
    assert [(r["period"], r["points_earned"], r["liability"]) for r in answer["rows"]] == [
        ("2024-01", 0, 0.0), ("2024-02", 30, 0.6)]  # fmt: skip
