"""``metrics coupons`` says in which time zone its window's days are counted: on a
program database the default is UTC (docs/metrics.md) while the definition said
"local days", and a purchase at 00:30 in Paris on the window's first day was left out
without the output saying why. SQLite file, then PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
"""
TARGETING = "customer_id,campaign,group\nann,nov,treatment\nbob,nov,treatment\n"


@pytest.mark.parametrize(
    ("zone", "said", "buyers"),
    [(None, "UTC", 1), ("Europe/Paris", "Europe/Paris", 2)],
)  # fmt: skip
def test_the_window_names_its_time_zone(
    db: Database, tmp_path: Path, zone: str | None, said: str, buyers: int
) -> None:
    p = EventProcessor(db, parse_program(PROGRAM))
    at = datetime.fromisoformat("2026-11-01T00:30:00+01:00")  # 31 October 23:30 UTC
    for member, hour in (("ann", at), ("bob", at.replace(hour=12))):
        p.enrol(member, at=at)
        p.process(Event(id=f"p-{member}", type="purchase", member=member, at=hour,
                        amount=Decimal(10)))  # fmt: skip
    targeting = tmp_path / "targeting.csv"
    targeting.write_text(TARGETING, encoding="utf-8")
    args = ["metrics", "coupons", "-i", f"{db.url}#shop", "--targeting", str(targeting),
            "--from", "2026-11-01", "--to", "2026-11-30", "-f", "json"]  # fmt: skip
    out = json.loads(fidelite(*args, *(["--timezone", zone] if zone else [])).stdout)
    assert out["definition"].startswith(
        f"Campaign window 2026-11-01 to 2026-11-30 (days in {said}, inclusive). "
    )
    assert out["parameters"]["timezone"] == said
    (row,) = out["rows"]
    assert (row["customers"], row["buyers"]) == (2, buyers)
