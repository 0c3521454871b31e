"""The report given a program database carries the program's KPIs and engagement, and
no longer lists them as needing a program database. A real SQLite program database."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.report.numbers import money
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
rewards:
  - {id: cup, name: Cup, kind: free_product, sku: CUP, cost: 50}
events: [review]
"""


def _event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at, **extra})


def _database(sqlite_template: Path, tmp_path: Path) -> Path:
    """ann buys 100 on Jan 5 and reviews on Jan 6, bob buys 40 on Jan 7; ann redeems a
    cup (50) on Feb 2 and buys 30 on Feb 3."""
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    p = EventProcessor(db, parse_program(PROGRAM))
    p.process(_event("p1", "purchase", "ann", "2024-01-05T10:00:00+00:00", amount=Decimal(100)))
    p.process(_event("v1", "review", "ann", "2024-01-06T10:00:00+00:00"))
    p.process(_event("p2", "purchase", "bob", "2024-01-07T10:00:00+00:00", amount=Decimal(40)))
    p.redeem("ann", "cup", key="r1", at=datetime.fromisoformat("2024-02-02T10:00:00+00:00"))
    p.process(_event("p3", "purchase", "ann", "2024-02-03T10:00:00+00:00", amount=Decimal(30)))
    db.dispose()
    return path


def test_the_report_of_a_program_database_shows_its_kpis_and_engagement(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = _database(sqlite_template, tmp_path)
    out = tmp_path / "out"
    fidelite("report", f"{path}#cafe", "--out", out, "-f", "json")
    data = json.loads((out / "report.json").read_text())
    kpis = data["metrics"]["program_kpis"]["rows"]
    keys = ("period", "members_total", "points_earned", "points_redeemed",
            "points_outstanding", "redemptions", "liability")  # fmt: skip
    # January: 100 + 40 earned, 140 outstanding; February: 30 earned, 50 redeemed,
    # 140 + 30 - 50 = 120 outstanding. No point value in the database: no liability.
    assert [tuple(r[k] for k in keys) for r in kpis] == [
        ("2024-01", 2, 140, 0, 140, 0, None),
        ("2024-02", 2, 30, 50, 120, 1, None),
    ]
    engaged = data["metrics"]["engagement"]["rows"]
    # January: ann (purchase, review) and bob (purchase): 3 interactions, 1 multi-kind.
    # February: ann's purchase (a redemption is no event).
    assert [(r["period"], r["active_members"], r["interactions"], r["multi_kind_members"])
            for r in engaged] == [("2024-01", 2, 3, 1), ("2024-02", 1, 1, 0)]  # fmt: skip
    left_out = data["not_included"]
    assert "program_kpis" not in left_out and "engagement" not in left_out
    assert left_out["liability_and_cost_of_rewards"].startswith(
        "the program database keeps no point value"
    )
    assert "<h2>Program KPIs and engagement</h2>" in (out / "report.html").read_text()


def test_the_report_writes_money_half_away_from_zero() -> None:
    assert (money(152.625), money(-0.125), money(None)) == ("152.63", "-0.13", "n/a")
