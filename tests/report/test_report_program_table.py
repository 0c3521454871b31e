"""The report's program KPI table has a column for every term of the points identity its
definition states (the change of outstanding - owed = earned - redeemed - expired +
adjusted + written off), so a reader can check it from the table. Real SQLite program
databases, under both refund shortfall policies."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

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
  - {{id: points, name: Points, value: 0.01}}
rules:
  - {{id: base, on: [purchase], per_amount: {{points: 1}}}}
rewards:
  - {{id: cup, name: Cup, kind: free_product, sku: CUP, cost: 50}}
refunds: {{shortfall: {shortfall}}}
"""
HEAD = [
    "month", "members", "active", "earned", "redeemed", "expired", "adjusted",
    "written off", "outstanding", "owed", "redemptions",
]  # fmt: skip


def _event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at, **extra})


def _database(sqlite_template: Path, tmp_path: Path, shortfall: str) -> Path:
    """January: ann buys 60, bob 40; ann redeems a cup (50). February: ann's purchase is
    refunded in full: of its 60 points she holds 10, the other 50 she spent; bob gets 5
    points of goodwill. March: ann buys 20."""
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    p = EventProcessor(db, parse_program(PROGRAM.format(shortfall=shortfall)))
    p.process(_event("p1", "purchase", "ann", "2024-01-05T10:00:00+00:00", amount=Decimal(60)))
    p.process(_event("p2", "purchase", "bob", "2024-01-07T10:00:00+00:00", amount=Decimal(40)))
    p.redeem("ann", "cup", key="r1", at=datetime.fromisoformat("2024-01-10T10:00:00+00:00"))
    p.process(
        _event(
            "f1", "refund", "ann", "2024-02-03T10:00:00+00:00", amount=Decimal(60), refund_of="p1"
        )
    )
    at = "2024-02-04T10:00:00+00:00"
    p.ledger.adjust("cafe", "bob", "points", 5, key="g1", reason="goodwill", actor="qa", at=at)
    p.process(_event("p3", "purchase", "ann", "2024-03-02T10:00:00+00:00", amount=Decimal(20)))
    db.dispose()
    return path


def _kpi_table(html: str) -> list[list[str]]:
    section = html.split("<h2>Program KPIs and engagement</h2>", 1)[1]
    table = section.split("<table>", 2)[1].split("</table>", 1)[0]
    return [
        re.findall(r"<t[hd]>([^<]*)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)
    ]


@pytest.mark.parametrize(
    ("shortfall", "rows"),
    [
        # ann's 50 spent points are written off: outstanding 0 + bob 45, nothing owed
        (
            "within_balance",
            [
                ["2024-01", "2", "2", "100", "50", "0", "0", "0", "50", "0", "1"],
                ["2024-02", "2", "0", "-60", "0", "0", "5", "50", "45", "0", "0"],
                ["2024-03", "2", "1", "20", "0", "0", "0", "0", "65", "0", "0"],
            ],
        ),
        # ann owes the 50; her 20 of March repay 20 of it
        (
            "debt",
            [
                ["2024-01", "2", "2", "100", "50", "0", "0", "0", "50", "0", "1"],
                ["2024-02", "2", "0", "-60", "0", "0", "5", "0", "45", "50", "0"],
                ["2024-03", "2", "1", "20", "0", "0", "0", "0", "45", "30", "0"],
            ],
        ),
    ],
)
def test_the_kpi_table_shows_every_term_of_the_points_identity(
    sqlite_template: Path, tmp_path: Path, shortfall: str, rows: list[list[str]]
) -> None:
    path = _database(sqlite_template, tmp_path, shortfall)
    out = tmp_path / "out"
    fidelite("report", f"{path}#cafe", "--out", out, "-f", "json")
    html = (out / "report.html").read_text()
    assert _kpi_table(html) == [HEAD, *rows]
    assert "outstanding - owed) = earned - redeemed - expired + adjusted + written off" in html
    held = 0  # the identity, checked from the table's own cells
    for row in rows:
        earned, redeemed, expired, adjusted, written_off, outstanding, owed = map(int, row[3:10])
        assert outstanding - owed - held == earned - redeemed - expired + adjusted + written_off
        held = outstanding - owed
