"""Shared pieces of the webhook tests: a program, a settable clock, outbox queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.tables import deliveries, outbox

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100}
"""


def processor(db: Database) -> EventProcessor:
    return EventProcessor(db, parse_program(PROGRAM))


def purchase(
    event_id: str, member: str, amount: str, at: str = "2026-11-02T10:00:00+00:00"
) -> Event:
    return Event(
        id=event_id, type="purchase", member=member, at=datetime.fromisoformat(at),
        amount=Decimal(amount),
    )  # fmt: skip


class Clock:
    """A settable clock for the worker (starts a little after the real now)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)

    def __call__(self) -> datetime:
        return self.now


def outbox_rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.event_type, outbox.c.member_ref, outbox.c.payload)
            .order_by(outbox.c.id)
        ).mappings()  # fmt: skip
        return [dict(r) for r in rows]


def count(db: Database, table: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def delivery(db: Database, delivery_id: int) -> dict[str, Any]:
    with db.read() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).mappings()
        return dict(row.one())
