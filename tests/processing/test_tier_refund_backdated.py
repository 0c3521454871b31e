"""A refund dated before a later purchase already recorded: the member's tier is judged on
their record without what was refunded, through the processor and the bulk import alike.

y1 200 on 1 October, y2 200 on 10 October: silver (400 reached 300). 50 of y1 refunded,
dated 5 October and sent after y2: 350 at the upgrade still reaches 300, so the member
keeps silver (it was taken away, 'refund: spend 350 no longer reaches 300').
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fidelite.engine import Event
from fidelite.engine.tiers import TierState
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  metric: spend
  window: rolling
  window_months: 12
  requalify_months: 12
  grace_months: 0
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300, earn_multiplier: 1.5}
"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+02:00")


ROWS = [
    ("y1", "purchase", "2025-10-01", "200", ""),
    ("y2", "purchase", "2025-10-10", "200", ""),
]


def timeline(p: EventProcessor) -> list[tuple[str, str, str, str, Decimal, str, str | None]]:
    return [
        (r["at"].date().isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["reason"], r["event_id"])
        for r in p.tier_timeline("ann")
    ]  # fmt: skip


def send(p: EventProcessor, rows: list[tuple[str, str, str, str, str]], how: str,
         path: Path) -> None:  # fmt: skip
    if how == "one_at_a_time":
        for event_id, kind, when, amount, refund_of in rows:
            p.process(Event(id=event_id, type=kind, member="ann", at=day(when),
                            amount=Decimal(amount), refund_of=refund_of or None))  # fmt: skip
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "type", "member", "at", "amount", "refund_of"])
        for event_id, kind, when, amount, refund_of in rows:
            writer.writerow([event_id, kind, "ann", day(when).isoformat(), amount, refund_of])
    summary = import_events(p, path)
    assert (summary.processed, summary.rejected) == (len(rows), [])


UPGRADE = ("2025-10-10", "upgrade", "bronze", "silver", Decimal(400), "spend 400 reached 300",
           "y2")  # fmt: skip


@pytest.mark.parametrize("how", ["one_at_a_time", "bulk_import"])
@pytest.mark.parametrize("dated", ["2025-10-05", "2025-10-12"])
def test_a_partial_refund_dated_before_the_upgrade_keeps_the_level(
    pdb: Database, tmp_path: Path, how: str, dated: str
) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    send(p, [*ROWS, ("ry1", "refund", dated, "50", "y1")], how, tmp_path / "events.csv")
    assert timeline(p) == [UPGRADE]
    assert p.tier_standing("ann") == TierState("silver", day("2025-10-10"), day("2026-10-10"))
    # y1 200 and y2 200 (bronze when bought), 50 taken back by the refund
    assert p.ledger.balance("shop", "ann", "points").available == 350
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("how", ["one_at_a_time", "bulk_import"])
def test_a_refund_dated_before_the_upgrade_that_leaves_too_little_undoes_it_at_the_upgrade(
    pdb: Database, tmp_path: Path, how: str
) -> None:
    """150 of y1 back, dated 5 October: 250 at the upgrade. Silver is undone, the entry
    dated at the upgrade it undoes (not before it) with the value without the refund."""
    p = EventProcessor(pdb, parse_program(PROGRAM))
    send(p, [*ROWS, ("ry1", "refund", "2025-10-05", "150", "y1")], how, tmp_path / "events.csv")
    assert timeline(p) == [
        UPGRADE,
        ("2025-10-10", "upgrade_reversed", "silver", "bronze", Decimal(250),
         "refund: spend 250 no longer reaches 300", "ry1"),
    ]  # fmt: skip
    assert p.tier_standing("ann") == TierState("bronze", day("2025-10-01"), None)  # joined
    assert_invariants(pdb, "shop")
