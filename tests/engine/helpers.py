"""Small builders shared by the engine tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fidelite.engine import Evaluator, Event, MemberState
from fidelite.program import ProgramDefinition, parse_program

HEAD = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - id: points
    name: Points
    value: 0.01
"""


def program(body: str) -> ProgramDefinition:
    """A program made of the common head and ``body`` (YAML)."""
    return parse_program(HEAD + body, name="test.yaml")


def evaluator(body: str) -> Evaluator:
    return Evaluator(program(body))


def purchase(amount: str, at: str = "2026-11-23T10:00:00+01:00", **fields: Any) -> Event:
    """A purchase event (Monday 23 November 2026, 10:00 Paris time by default)."""
    data: dict[str, Any] = {
        "id": fields.pop("id", "e1"),
        "type": "purchase",
        "member": "m1",
        "at": at,
        "amount": Decimal(amount),
    }
    data.update(fields)
    return Event.model_validate(data)


def action(kind: str, at: str = "2026-11-23T10:00:00+01:00", **fields: Any) -> Event:
    return Event.model_validate({"id": "a1", "type": kind, "member": "m1", "at": at, **fields})


def member(**fields: Any) -> MemberState:
    return MemberState(ref="m1", **fields)


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text)
