"""What the engine knows about a member when it evaluates an event.

The store assembles this snapshot; the engine never reads anything else, which is
what makes a decision reproducible from (program, member state, event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from fidelite.engine.event import AttributeValue


@dataclass(frozen=True)
class MemberState:
    """A member's state before the event.

    ``rule_points`` holds the points each rule already gave this member in a cap period,
    keyed by ``(rule_id, period_key)`` (see :func:`fidelite.engine.period.period_key`).
    """

    ref: str
    tier: str | None = None
    segments: frozenset[str] = frozenset()
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    purchases: int = 0
    joined_at: datetime | None = None
    birth_date: date | None = None
    rule_points: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgramState:
    """Program-wide counters: points each budgeted rule has given so far."""

    budget_used: Mapping[str, int] = field(default_factory=dict)
