"""Program KPIs from a real program database (SQLite file and PostgreSQL), hand-counted."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.kpis import program_kpis
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database

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
expiry: {mode: after_earning, months: 1, rounding: none}
"""


def _event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at, **extra})


def _run(db: Database) -> EventProcessor:
    p = EventProcessor(db, parse_program(PROGRAM))
    # January: ann buys 100 and 30 (refund of 30 later), bob 40; ann redeems a cup (50).
    p.process(_event("p1", "purchase", "ann", "2024-01-05T10:00:00+00:00", amount=Decimal(100)))
    p.process(_event("p2", "purchase", "bob", "2024-01-06T10:00:00+00:00", amount=Decimal(40)))
    p.process(_event("p3", "purchase", "ann", "2024-01-07T10:00:00+00:00", amount=Decimal(30)))
    p.redeem("ann", "cup", key="r1", at=datetime.fromisoformat("2024-01-08T10:00:00+00:00"))
    # February: the refund of p3 (30 points back out); the expiry job at the month end
    p.process(
        _event(
            "f1", "refund", "ann", "2024-02-01T10:00:00+00:00", amount=Decimal(30), refund_of="p3"
        )
    )
    p.ledger.expire("cafe", as_of="2024-02-29T12:00:00+00:00")  # the month-end expiry job
    return p


def test_program_kpis_per_month(db: Database) -> None:
    _run(db)
    result = program_kpis(db.url, "cafe", value=Decimal("0.01"))
    rows = {r["period"]: r for r in result.rows}
    assert list(rows) == ["2024-01", "2024-02"]
    jan, feb = rows["2024-01"], rows["2024-02"]
    assert (jan["members_new"], jan["members_total"], jan["active_members"]) == (2, 2, 2)
    assert (jan["points_earned"], jan["points_redeemed"], jan["burn_rate"]) == (170, 50, 29.4118)
    assert (jan["redemptions"], jan["redeeming_members"], jan["redemption_rate"]) == (1, 1, 50.0)
    assert (jan["points_outstanding"], jan["liability"], jan["member_spend"]) == (120, 1.2, 170.0)
    # February: -30 from the refund; ann's lot of 100 (50 left) and bob's 40 expire on
    # Feb 5/6 (one month after earning); ann's p3 lot was reversed first.
    assert (feb["points_earned"], feb["points_expired"], feb["active_members"]) == (-30, 90, 0)
    assert feb["breakage_rate_to_date"] == round(100 * 90 / (90 + 50), 4)
    assert (feb["points_outstanding"], feb["member_spend"]) == (0, -30.0)


def test_members_vs_non_members_spend(db: Database, write_csv: Any) -> None:
    _run(db)
    tx: Path = write_csv(
        "customer_id,timestamp,amount\nann,2024-01-05,100\ncarl,2024-01-05,60\ndora,2024-01-31,20\n"
    )
    result = program_kpis(
        db.url, "cafe", value=Decimal("0.01"), transactions=open_dataset(tx), margin=0.3
    )
    # ann's cup (50 points = 0.50) was redeemed on Jan 8, inside the file's days. Members
    # spent 100 - 40 = 60 more each: (60 x 30 % - 0.50) / 0.50 x 100 = 3500 %.
    assert result.summary == {
        "customers": 3,
        "member_customers": 1,
        "enrolment_rate": 33.3333,
        "spend_per_member_customer": 100.0,
        "spend_per_non_member_customer": 40.0,
        "first_day": "2024-01-05",
        "last_day": "2024-01-31",
        "incremental_revenue": 60.0,
        "points_redeemed": 50,
        "cost_of_rewards": 0.5,
        "roi": 3500.0,
    }
    assert result.parameters["margin"] == 30.0
    assert [r["cost_of_rewards"] for r in result.rows] == [0.5, 0.0]


def test_roi_needs_a_point_value_and_a_redemption(db: Database, write_csv: Any) -> None:
    _run(db)
    tx: Path = write_csv("customer_id,timestamp,amount\nann,2024-01-05,100\ncarl,2024-01-05,60\n")
    no_value = program_kpis(db.url, "cafe", transactions=open_dataset(tx)).summary
    assert (no_value["incremental_revenue"], no_value["cost_of_rewards"], no_value["roi"]) == (
        40.0,
        None,
        None,
    )
    # the file's one day (Jan 5) holds no redemption: no cost, so no ROI
    valued = program_kpis(db.url, "cafe", value=Decimal("0.01"), transactions=open_dataset(tx))
    assert (valued.summary["cost_of_rewards"], valued.summary["roi"]) == (0.0, None)
    with pytest.raises(ValueError, match="margin must be above 0"):
        program_kpis(db.url, "cafe", transactions=open_dataset(tx), margin=0)


def test_unknown_program_is_a_clear_error(db: Database) -> None:
    with pytest.raises(InputError, match="no program 'nope' in this database"):
        program_kpis(db.url, "nope")


def test_program_kpis_cli(sqlite_template: Path, tmp_path: Path) -> None:
    import json
    import shutil
    import subprocess
    import sys

    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _run(db)
    db.dispose()
    fidelite = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
    args = [
        fidelite,
        "metrics",
        "program-kpis",
        "--db",
        f"{path}#cafe",
        "--point-value",
        "0.01",
        "-f",
        "json",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    jan = json.loads(proc.stdout)["rows"][0]
    assert (jan["points_earned"], jan["liability"]) == (170, 1.2)
    bad = subprocess.run(
        [*args[:5], "--point-value", "ten", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "--point-value" in bad.stdout
