"""Events dated before tier steps already applied (an import of older history after the
daily job has run) write no step a second time.

The QA scenario (concurrency report, D2): a member's October purchases, the job run for
1-4 December (re-qualified on 1 November, downgraded on 1 December), then November
purchases and a refund imported. The refund's replay gives back the 1 November
re-qualification date; the member's next event finds that step due, and it is on the
timeline already: the state moves on, the entry and its webhook event are not written
again.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: pb
name: PB
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1.00}}
tiers:
  metric: spend
  window: rolling
  window_months: 1
  requalify_months: 1
  grace_months: 0
  downgrade: to_qualified
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
    - {id: gold, name: Gold, threshold: 1000}
"""


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_)


def buy(event_id: str, amount: str, when: str) -> Event:
    return Event(id=event_id, type="purchase", member="M", at=at(when), amount=Decimal(amount))


def apply(p: EventProcessor, events: list[Event], batch: bool) -> None:
    if not batch:
        for event in events:
            p.process(event)
        return
    with p.db.write() as conn:
        process_events(p, conn, events)


def rows(p: EventProcessor) -> list[tuple[Any, ...]]:
    return [
        (r["at"].isoformat(), r["kind"], r["from_tier"], r["to_tier"], r["value"],
         r["reason"], r["event_id"])
        for r in p.tier_timeline("M")
    ]  # fmt: skip


def tier_hooks(p: EventProcessor) -> list[tuple[str, str, Any]]:
    with p.db.read() as conn:
        found = conn.execute(
            text("SELECT payload FROM outbox WHERE program_id = :p AND member_ref = 'M' "
                 "AND event_type = 'tier.changed' ORDER BY id"),
            {"p": p.program.id},
        ).scalars().all()  # fmt: skip
    payloads = [x if isinstance(x, dict) else json.loads(x) for x in found]
    return [(x["kind"], x["at"], x["event_id"]) for x in payloads]


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_back_dated_events_write_no_step_twice(pdb: Database, batch: bool) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    apply(p, [buy("o1", "1100", "2026-10-01T10:30:00+00:00"),
              buy("o2", "3000", "2026-10-05T12:00:00+00:00")], batch)  # fmt: skip
    for day in range(1, 5):
        p.review_tiers(at(f"2026-12-0{day}T00:00:00+00:00"))
    p.review_tiers(at("2026-12-04T12:00:00+00:00"))
    apply(p, [buy("n1", "140", "2026-11-01T04:10:00+00:00")], batch)
    p.process(Event(id="r1", type="refund", member="M", at=at("2026-11-01T09:00:00+00:00"),
                    amount=Decimal("140"), refund_of="n1"))  # fmt: skip
    apply(p, [buy("n2", "50", "2026-11-02T08:00:00+00:00"),
              buy("n3", "60", "2026-11-03T08:00:00+00:00")], batch)  # fmt: skip
    p.review_tiers(at("2026-12-05T00:00:00+00:00"))
    assert rows(p) == [
        ("2026-10-01T10:30:00+00:00", "upgrade", "bronze", "gold", Decimal("1100.0000"),
         "spend 1100 reached 1000", "o1"),
        ("2026-11-01T10:30:00+00:00", "requalified", "gold", "gold", Decimal("3000.0000"),
         "spend 3000 meets 1000", None),
        ("2026-12-01T10:30:00+00:00", "downgrade", "gold", "bronze", Decimal("0.0000"),
         "spend 0 below 1000 at re-qualification", None),
    ]  # fmt: skip
    # n1, dated 1 November before the re-qualification, changes no step in date order
    # (the member was gold; its 140 is out of the 1 December window): no entry. It wrote
    # an upgrade from bronze (the level the later downgrade left) to gold at its date.
    # the steps found done moved the member on: bronze from the 1 December downgrade
    standing = p.tier_standing("M")
    assert standing is not None
    assert (standing.tier, standing.since, standing.review_at, standing.grace_until) == (
        "bronze", at("2026-12-01T10:30:00+00:00"), None, None)  # fmt: skip
    assert tier_hooks(p) == [
        ("upgrade", "2026-10-01T10:30:00+00:00", "o1"),
        ("requalified", "2026-11-01T10:30:00+00:00", None),
        ("downgrade", "2026-12-01T10:30:00+00:00", None),
    ]
    assert p.review_tiers(at("2026-12-31T00:00:00+00:00")) == []
