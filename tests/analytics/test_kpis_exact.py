"""Program KPIs computed from exact figures, rounded to cents only for display; money
rounds half away from zero. Real program databases (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.kpis import program_kpis
from fidelite.analytics.metrics.result import money
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite

PROGRAM = """\
id: club
name: Club
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: bag, name: Bag, kind: free_product, sku: BAG, cost: 300}
"""


def _event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at, **extra})


def _club(db: Database) -> EventProcessor:
    """Four members buy in March 2024 (a 300.50, b 60, c 220, d 30: 610 points);
    a redeems a bag (300 points) on Mar 20."""
    p = EventProcessor(db, parse_program(PROGRAM))
    for i, (ref, amount) in enumerate((("a", "300.50"), ("b", "60"), ("c", "220"), ("d", "30"))):
        at = f"2024-03-0{i + 1}T10:00:00+00:00"
        p.process(_event(f"p{i}", "purchase", ref, at, amount=Decimal(amount)))
    p.redeem("a", "bag", key="r1", at=datetime.fromisoformat("2024-03-20T10:00:00+00:00"))
    return p


def test_money_rounds_half_away_from_zero() -> None:
    # 152.625 is stored as 152.62499999...: its written form rounds up, as a till does.
    assert (money(152.625), money(-0.125), money(0.285), money(Decimal("2.675"))) == (
        152.63,
        -0.13,
        0.29,
        2.68,
    )
    assert (money(None), money(3.0)) == (None, 3.0)


def test_incremental_revenue_and_roi_use_unrounded_means(db: Database, write_csv: Any) -> None:
    _club(db)
    tx: Path = write_csv(
        "customer_id,timestamp,amount\n"
        "a,2024-03-01,300.50\nb,2024-03-02,60\nc,2024-03-03,220\nd,2024-03-04,30\n"
        "x,2024-03-05,80\ny,2024-03-31,30\n"
    )
    summary = program_kpis(
        db.url, "club", value=Decimal("0.01"), transactions=open_dataset(tx), margin=0.3
    ).summary
    # members 610.50 / 4 = 152.625 (shown 152.63, half away from zero); non-members
    # 110 / 2 = 55. Incremental revenue (152.625 - 55) x 4 = 390.50 (not 390.52 from the
    # shown mean, nor 390.48 from a half-even 152.62). Cost 300 points x 0.01 = 3.00.
    # ROI = (390.50 x 30 % - 3) / 3 x 100 = (117.15 - 3) / 3 x 100 = 3805.0.
    assert summary["spend_per_member_customer"] == 152.63
    assert summary["spend_per_non_member_customer"] == 55.0
    assert (summary["incremental_revenue"], summary["cost_of_rewards"]) == (390.5, 3.0)
    assert summary["roi"] == 3805.0
    assert "_exact" not in summary


NY_PROGRAM = PROGRAM.replace("time_zone: UTC", "time_zone: America/New_York")


def _ny_database(sqlite_template: Path, tmp_path: Path) -> Path:
    """A copy of the empty database with the New York club: a buys 100 on Jan 31 at
    20:00 local (Feb 1, 01:00 UTC), b buys 300 on Feb 10 and redeems a bag (300) on
    Feb 11. Outstanding at the end of January (local): 100 points; of February: 100."""
    import shutil

    path = tmp_path / "club.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    p = EventProcessor(db, parse_program(NY_PROGRAM))
    p.process(_event("p1", "purchase", "a", "2024-01-31T20:00:00-05:00", amount=Decimal(100)))
    p.process(_event("p2", "purchase", "b", "2024-02-10T12:00:00-05:00", amount=Decimal(300)))
    p.redeem("b", "bag", key="r1", at=datetime.fromisoformat("2024-02-11T12:00:00-05:00"))
    db.dispose()
    (tmp_path / "club.yaml").write_text(NY_PROGRAM)
    return path


def test_the_program_file_gives_the_point_value_and_the_time_zone(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = _ny_database(sqlite_template, tmp_path)
    program = tmp_path / "club.yaml"
    out = json.loads(
        fidelite("metrics", "program-kpis", "--db", path, "-P", program, "-f", "json").stdout
    )
    # The file's currency is worth 0.01 and its zone is New York: January holds a's 100
    # points (1.00 of liability); February b's 300 earned and redeemed (cost 3.00).
    rows = [(r["period"], r["points_outstanding"], r["liability"], r["cost_of_rewards"])
            for r in out["rows"]]  # fmt: skip
    assert rows == [("2024-01", 100, 1.0, 0.0), ("2024-02", 100, 1.0, 3.0)]
    params = out["parameters"]
    assert (params["point_value"], params["point_value_from"]) == (
        "0.01",
        f"program file {program}",
    )
    assert (params["timezone"], params["timezone_from"]) == (
        "America/New_York",
        f"program file {program}",
    )
    # --point-value and --timezone still win, and say so. In UTC a's purchase is in February.
    given = json.loads(
        fidelite(
            "metrics",
            "program-kpis",
            "--db",
            path,
            "-P",
            program,
            "--point-value",
            "0.02",
            "--timezone",
            "UTC",
            "-f",
            "json",
        ).stdout
    )
    assert [(r["period"], r["liability"], r["cost_of_rewards"]) for r in given["rows"]] == [
        ("2024-02", 2.0, 6.0)
    ]
    assert (given["parameters"]["point_value_from"], given["parameters"]["timezone_from"]) == (
        "--point-value",
        "--timezone",
    )


def test_a_program_file_of_another_program_is_refused(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = _ny_database(sqlite_template, tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(NY_PROGRAM.replace("id: club", "id: other"))
    bad = fidelite("metrics", "program-kpis", "--db", path, "-P", other, "-f", "json", ok=False)
    assert bad.returncode != 0
    assert "defines program 'other', not 'club'" in bad.stdout


def test_a_redemption_cancelled_next_month_counts_in_both_months(db: Database) -> None:
    from fidelite.ledger import Ledger

    ledger = Ledger(db, clock=lambda: datetime.fromisoformat("2024-01-01T09:00:00+00:00"))
    ledger.open_program("shop", ["points"])
    for ref in ("ann", "bob"):
        ledger.create_member("shop", ref)
        ledger.earn("shop", ref, "points", 100, key=f"e-{ref}", at="2024-01-02T10:00:00+00:00")
    # January: ann spends 10 (cancelled on Feb 3) and 20, bob spends 30 and 5, the 5
    # cancelled the same month. February: bob spends 40.
    s1 = ledger.spend("shop", "ann", "points", 10, key="s1", at="2024-01-20T10:00:00+00:00")
    ledger.spend("shop", "ann", "points", 20, key="s2", at="2024-01-21T10:00:00+00:00")
    ledger.spend("shop", "bob", "points", 30, key="s3", at="2024-01-22T10:00:00+00:00")
    s4 = ledger.spend("shop", "bob", "points", 5, key="s4", at="2024-01-23T10:00:00+00:00")
    ledger.reverse("shop", s4.transaction_id, key="c4", at="2024-01-24T10:00:00+00:00")
    ledger.reverse("shop", s1.transaction_id, key="c1", at="2024-02-03T10:00:00+00:00")
    ledger.spend("shop", "bob", "points", 40, key="s5", at="2024-02-10T10:00:00+00:00")
    rows = program_kpis(db.url, "shop").rows
    keys = ("points_redeemed", "redemptions", "redeeming_members", "redemption_frequency")
    # January: 10 + 20 + 30 + 5 - 5 = 60 points; 4 spends - 1 cancelled = 3 redemptions
    # (ann's 10 is cancelled only in February), by ann and bob: 3 / 2 = 1.5 each.
    # February: 40 - 10 = 30 points; bob's spend 1 - ann's cancellation 1 = 0
    # redemptions; bob redeemed (1 spend kept / 1 member = 1.0).
    assert [tuple(r[k] for k in keys) for r in rows] == [(60, 3, 2, 1.5), (30, 0, 1, 1.0)]


def test_goodwill_credits_are_points_adjusted_and_defined(db: Database) -> None:
    from fidelite.ledger import Ledger

    ledger = Ledger(db, clock=lambda: datetime.fromisoformat("2024-01-01T09:00:00+00:00"))
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "ann")
    ledger.earn("shop", "ann", "points", 100, key="e1", at="2024-01-02T10:00:00+00:00")
    ledger.adjust("shop", "ann", "points", 150, key="gw", reason="goodwill", actor="qa",
                  at="2024-01-05T10:00:00+00:00")  # fmt: skip
    result = program_kpis(db.url, "shop")
    jan = result.rows[0]
    # 100 earned; the 150 goodwill credit is adjusted, not earned; both are outstanding.
    assert (jan["points_earned"], jan["points_adjusted"], jan["points_outstanding"]) == (
        100,
        150,
        250,
    )
    assert "adjusted = manual credits - debits (goodwill, corrections; not in earned)" in (
        result.definition
    )
    docs = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    assert "| `points_adjusted` | manual credits minus debits in the period" in docs


def test_spend_per_active_member_rounds_its_exact_mean(db: Database) -> None:
    """0.70 + 0.35 summed as doubles is 1.0499999999999998; the mean per member is
    0.525 exactly and shows as 0.53 (half away from zero), not 0.52."""
    p = EventProcessor(db, parse_program(PROGRAM))
    for i, (ref, amount) in enumerate((("a", "0.70"), ("b", "0.35"))):
        at = f"2024-03-0{i + 1}T10:00:00+00:00"
        p.process(_event(f"p{i}", "purchase", ref, at, amount=Decimal(amount)))
    (row,) = program_kpis(db.url, "club").rows
    assert (row["member_spend"], row["spend_per_active_member"]) == (1.05, 0.53)
