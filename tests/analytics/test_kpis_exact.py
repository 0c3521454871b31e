"""Program KPIs computed from exact figures, rounded to cents only for display; money
rounds half away from zero. Real program databases (SQLite file and PostgreSQL)."""

from __future__ import annotations

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
