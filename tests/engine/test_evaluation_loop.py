"""The evaluation loop's shortcuts give what the plain computation gives.

A ``per`` of 1 is not divided by, and the fields' values are built by one function
made from the fields' expressions; each is checked here against the computation it
replaces (the division, written out; each field's expression evaluated on its own).
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from fidelite.engine import Event
from fidelite.engine.context import (
    EVENT_FIELDS,
    MEMBER_FIELDS,
    ContextFactory,
    _coupon,
    _is_birthday,
)
from tests.engine.helpers import evaluator, member, purchase


def test_a_per_of_one_gives_the_points_of_the_division() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: spend, on: [purchase], per_amount: {points: 1.37, per: 1.00}}\n"
        "  - id: lines\n"
        "    on: [purchase]\n"
        "    per_item: {points_per_amount: 2.9, per: 1}\n"
        "    rounding: ceil\n"
    )
    rng = random.Random(7)
    for _ in range(300):
        amount = Decimal(f"{rng.randint(0, 10**10 - 1)}.{rng.randint(0, 9999):04d}")
        # Prices with more digits than the decimal context keeps: the line total, a
        # product, is rounded to 28 digits, and dividing that by 1 changes nothing.
        price = Decimal(f"{rng.randint(0, 10**9)}.{rng.randint(0, 10**20):020d}")
        quantity = rng.randint(1, 9)
        event = purchase(
            str(amount), items=[{"sku": "s", "price": str(price), "quantity": quantity}]
        )
        decision = engine.evaluate(event, member())
        spend = math.floor(amount / Decimal("1.00") * Decimal("1.37"))
        lines = math.ceil(price * quantity / Decimal(1) * Decimal("2.9"))
        assert [(line.rule, line.points) for line in decision.trace] == [
            ("spend", spend),
            ("lines", lines),
        ]


def test_values_are_each_fields_expression() -> None:
    zone = ZoneInfo("Europe/Paris")
    needed = {"event": frozenset(EVENT_FIELDS), "member": frozenset(MEMBER_FIELDS)}
    event = Event.model_validate(
        {
            "id": "e1",
            "type": "purchase",
            "member": "m1",
            "at": "2026-02-28T23:30:00+00:00",
            "amount": "12.5",
            "channel": "web",
            "coupon": "HELLO30",
            "items": [{"sku": "B1", "category": "beans", "quantity": 2, "price": "6.10"}],
            "attributes": {"stars": 4},
        }
    )
    someone = member(
        tier="gold",
        segments=frozenset({"vip", "regulars"}),
        attributes={"student": True},
        purchases=3,
        joined_at=event.at.replace(year=2025),
        birth_date=event.at.astimezone(zone).date().replace(year=1990),
    )
    local = event.at.astimezone(zone)
    names = {"e": event, "m": someone, "local": local, "_is_birthday": _is_birthday,
             "_coupon": _coupon}  # fmt: skip
    expected = {
        "event": {f: eval(EVENT_FIELDS[f], names) for f in sorted(EVENT_FIELDS)},
        "member": {f: eval(MEMBER_FIELDS[f], names) for f in sorted(MEMBER_FIELDS)},
    }
    values = ContextFactory(needed, zone).values(event, someone)
    assert values == expected
    assert list(values["event"]) == sorted(EVENT_FIELDS)
    assert values["event"]["weekday"] == 7 and values["event"]["date"] == "2026-03-01"
    assert values["member"]["birthday"] is True and values["member"]["days_since_joined"] == 365
    only = ContextFactory({"event": frozenset({"hour"}), "member": frozenset()}, zone)
    assert only.values(event, someone) == {"event": {"hour": 0}, "member": {}}
