"""Program KPIs from a real program database (SQLite file and PostgreSQL), hand-counted."""

from __future__ import annotations

import json
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
    # Nothing earned net (the refund's -30 only): a burn rate is undefined, not -0.0.
    assert (feb["points_redeemed"], feb["burn_rate"]) == (0, None)
    assert '"burn_rate": null' in json.dumps(feb)


def test_roi_is_undefined_when_cancellations_make_the_cost_negative(
    db: Database, write_csv: Any
) -> None:
    p = EventProcessor(db, parse_program(PROGRAM))
    p.process(_event("p1", "purchase", "ann", "2024-01-05T10:00:00+00:00", amount=Decimal(100)))
    cup = p.redeem("ann", "cup", key="r1", at=datetime.fromisoformat("2024-01-08T10:00:00+00:00"))
    p.cancel_redemption(cup.id, at=datetime.fromisoformat("2024-01-20T10:00:00+00:00"))
    tx: Path = write_csv("customer_id,timestamp,amount\nann,2024-01-20,100\ncarl,2024-01-20,60\n")
    valued = program_kpis(db.url, "cafe", value=Decimal("0.01"), transactions=open_dataset(tx))
    summary = valued.summary
    # The file's one day holds the cancellation only: 50 points came back, a cost of -0.50.
    assert (summary["points_redeemed"], summary["cost_of_rewards"]) == (-50, -0.5)
    assert (summary["incremental_revenue"], summary["roi"]) == (40.0, None)
    jan = valued.rows[0]
    assert (jan["points_earned"], jan["points_redeemed"], jan["burn_rate"]) == (100, 0, 0.0)


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
    import shutil

    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _run(db)
    db.dispose()
    args = [
        "metrics",
        "program-kpis",
        "--db",
        f"{path}#cafe",
        "--point-value",
        "0.01",
        "-f",
        "json",
    ]
    proc = fidelite(*args)
    jan = json.loads(proc.stdout)["rows"][0]
    assert (jan["points_earned"], jan["liability"]) == (170, 1.2)
    # The database is named URL#PROGRAM, and the engine is stated, as in every metric.
    assert json.loads(proc.stdout)["parameters"] == {
        "program": "cafe", "currency": "points", "period": "month", "timezone": "UTC",
        "database": f"sqlite:///{path}#cafe", "point_value": "0.01",
        "point_value_from": "--point-value", "timezone_from": "default", "margin": 100.0,
        "money": None, "money_places": 2, "money_places_from": "default",
        "engine": "duckdb",
    }  # fmt: skip
    tx = tmp_path / "all.csv"
    tx.write_text("customer_id,timestamp,amount\nann,05/01/2024,100\ncarl,06/01/2024,60\n")
    with_tx = fidelite(*args, "-i", tx)
    # The transactions are stated as any metric states its input: file, rows, dates.
    assert json.loads(with_tx.stdout)["parameters"] == {
        "program": "cafe", "currency": "points", "period": "month", "timezone": "UTC",
        "database": f"sqlite:///{path}#cafe", "point_value": "0.01",
        "point_value_from": "--point-value", "timezone_from": "default", "margin": 100.0,
        "money": None, "money_places": 2, "money_places_from": "default",
        "input": str(tx), "rows": 2, "date_format": "%d/%m/%Y", "optional_columns": [],
        "date_warning": "every date also reads month first (e.g. '05/01/2024'): read day "
        "first, as %d/%m/%Y; pass --date-format %m/%d/%Y if the month comes first",
        "engine": "duckdb",
    }  # fmt: skip
    bad = fidelite(*args[:4], "--point-value", "ten", "-f", "json", ok=False)
    assert bad.returncode != 0 and "--point-value" in bad.stdout


def _ledger_only(db: Database) -> None:
    """A program run straight on the ledger (as `fidelite member add` and the demo do):
    no processed events, no member_states rows.

    ann and bob are enrolled on 2024-03-10 (wall clock); ann's points were posted with
    earlier business times. ann: +100 on Jan 5, spends 30 on Jan 20, spends 20 on Feb 3
    (cancelled on Feb 4). bob: +50 on Mar 12, spends it on Mar 13, the purchase is
    refunded on Mar 15 with the points already spent: bob owes 50.
    """
    from fidelite.ledger import Ledger

    enrolled = datetime.fromisoformat("2024-03-10T12:00:00+00:00")
    ledger = Ledger(db, clock=lambda: enrolled)
    ledger.open_program("shop", ["points"])
    for ref in ("ann", "bob"):
        ledger.create_member("shop", ref)
    ledger.earn("shop", "ann", "points", 100, key="e1", at="2024-01-05T10:00:00+00:00")
    ledger.spend("shop", "ann", "points", 30, key="s1", at="2024-01-20T10:00:00+00:00")
    s2 = ledger.spend("shop", "ann", "points", 20, key="s2", at="2024-02-03T10:00:00+00:00")
    ledger.reverse("shop", s2.transaction_id, key="c2", at="2024-02-04T10:00:00+00:00")
    e2 = ledger.earn("shop", "bob", "points", 50, key="e2", at="2024-03-12T10:00:00+00:00")
    ledger.spend("shop", "bob", "points", 50, key="s3", at="2024-03-13T10:00:00+00:00")
    ledger.reverse(
        "shop", e2.transaction_id, key="r2", shortfall="debt", at="2024-03-15T10:00:00+00:00"
    )


KEYS = (
    "members_new",
    "members_total",
    "points_earned",
    "points_redeemed",
    "redemptions",
    "redeeming_members",
    "redemption_rate",
    "points_outstanding",
    "points_owed",
    "liability",
)


def test_program_kpis_count_members_enrolled_in_the_ledger(db: Database) -> None:
    _ledger_only(db)
    rows = program_kpis(db.url, "shop", value=Decimal("0.01")).rows
    assert [r["period"] for r in rows] == ["2024-01", "2024-02", "2024-03"]
    # ann joined at her first ledger entry (Jan 5, before her enrolment was recorded),
    # bob at his enrolment (Mar 10). The cancelled spend is no redemption. bob's debt is
    # reported apart: the liability is what ann holds (70 points = 0.70).
    assert [tuple(r[k] for k in KEYS) for r in rows] == [
        (1, 1, 100, 30, 1, 1, 100.0, 70, 0, 0.7),
        (0, 1, 0, 0, 0, 0, 0.0, 70, 0, 0.7),
        (1, 2, 0, 50, 1, 1, 50.0, 70, 50, 0.7),
    ]


def test_program_kpis_count_ledger_members_beside_processed_ones(db: Database) -> None:
    _run(db)  # ann and bob enrolled by their first events in January
    from fidelite.ledger import Ledger

    Ledger(db, clock=lambda: datetime.fromisoformat("2024-02-10T09:00:00+00:00")).create_member(
        "cafe", "carl"
    )
    rows = {r["period"]: r for r in program_kpis(db.url, "cafe").rows}
    assert (rows["2024-01"]["members_total"], rows["2024-01"]["members_new"]) == (2, 2)
    assert (rows["2024-02"]["members_total"], rows["2024-02"]["members_new"]) == (3, 1)
    assert rows["2024-01"]["active_member_rate"] == 100.0  # ann and bob bought in January


def test_program_kpis_cli_finds_the_only_program_of_a_ledger_database(
    sqlite_template: Path, tmp_path: Path
) -> None:
    import shutil

    path = tmp_path / "shop.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _ledger_only(db)
    db.dispose()
    proc = fidelite("metrics", "program-kpis", "--db", path, "--point-value", "0.01", "-f", "json")
    out = json.loads(proc.stdout)
    assert out["parameters"]["program"] == "shop"
    march = out["rows"][-1]
    assert (march["members_total"], march["points_owed"], march["liability"]) == (2, 50, 0.7)
