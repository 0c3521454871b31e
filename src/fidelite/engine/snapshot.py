"""Reading a member snapshot from JSON (for dry runs and tests).

The store builds :class:`MemberState` from its tables; a dry run (``fidelite program
simulate``) takes the same information from a small JSON object instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from fidelite.engine.event import AttributeValue, Day, Instant
from fidelite.engine.member import MemberState


class MemberSnapshot(BaseModel):
    """JSON shape of a member's state: ``rule_points`` maps ``"rule@period"`` to points."""

    model_config = ConfigDict(extra="forbid")

    ref: str = "member"
    tier: str | None = None
    segments: list[str] = Field(default_factory=list)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    purchases: int = Field(default=0, ge=0)
    joined_at: Instant | None = None
    birth_date: Day | None = None
    # Points a rule gave: a whole number, at least 0 (not "5", 5.5 nor -100, which would
    # let the dry run give more than the cap).
    rule_points: dict[str, Annotated[StrictInt, Field(ge=0)]] = Field(default_factory=dict)

    def state(self) -> MemberState:
        """The engine's view of this snapshot."""
        usage: dict[tuple[str, str], int] = {}
        for key, points in self.rule_points.items():
            rule, _, period = key.partition("@")
            usage[(rule, period)] = points
        return MemberState(
            ref=self.ref,
            tier=self.tier,
            segments=frozenset(self.segments),
            attributes=self.attributes,
            purchases=self.purchases,
            joined_at=self.joined_at,
            birth_date=self.birth_date,
            rule_points=usage,
        )


def member_from_json(data: Any) -> MemberState:
    """Validate a JSON member snapshot (raises pydantic's ValidationError)."""
    return MemberSnapshot.model_validate(data).state()
