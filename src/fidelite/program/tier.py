"""Tiers (levels): what qualifies a member, and what each level gives.

A member qualifies for the highest tier whose ``threshold`` their qualifying value
(spend, points earned or purchase count) over the window reaches. Upgrades are
immediate; a downgrade only happens at re-qualification (every ``requalify_months``
after the tier was reached with a rolling window; every 1 January with a calendar-year
window), after ``grace_months``, by one level at a time unless ``downgrade`` says
``to_qualified``.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from fidelite.program.model import Identifier, ProgramModel


class TierMetric(StrEnum):
    """What qualifies a member for a tier."""

    spend = "spend"
    points = "points"
    purchases = "purchases"


class WindowKind(StrEnum):
    """Qualification windows: the last N months, or the current calendar year."""

    rolling = "rolling"
    calendar_year = "calendar_year"


class Downgrade(StrEnum):
    """How far a member falls at re-qualification."""

    one_level = "one_level"
    to_qualified = "to_qualified"


class Tier(ProgramModel):
    """One level. The first tier in the file must have threshold 0 (the base level)."""

    id: Identifier
    name: str
    threshold: Decimal = Field(ge=0)
    earn_multiplier: Decimal = Field(default=Decimal(1), ge=1)
    benefits: list[str] = Field(default_factory=list)


class TierPolicy(ProgramModel):
    """The tier ladder, lowest first, and how members move on it."""

    metric: TierMetric = TierMetric.spend
    window: WindowKind = WindowKind.rolling
    window_months: int = Field(default=12, ge=1, le=120)
    requalify_months: int = Field(default=12, ge=1, le=120)
    grace_months: int = Field(default=0, ge=0, le=24)
    downgrade: Downgrade = Downgrade.one_level
    levels: list[Tier] = Field(min_length=1)

    @model_validator(mode="after")
    def _ladder(self) -> TierPolicy:
        if self.levels[0].threshold != 0:
            raise ValueError("the first tier is the base level: its threshold must be 0")
        for lower, upper in zip(self.levels, self.levels[1:], strict=False):
            if upper.threshold <= lower.threshold:
                raise ValueError(
                    f"tier {upper.id!r} must have a higher threshold than {lower.id!r}"
                )
        ids = [tier.id for tier in self.levels]
        if len(set(ids)) != len(ids):
            raise ValueError("tier ids must be unique")
        return self

    def index(self, tier_id: str) -> int:
        """Position of ``tier_id`` on the ladder (0 = base)."""
        return [tier.id for tier in self.levels].index(tier_id)
