"""Tiers (levels): what qualifies a member, and what each level gives.

A member qualifies for the highest tier whose ``threshold`` their qualifying value
(spend, points earned or purchase count) over the window reaches. Upgrades are
immediate; a downgrade only happens at re-qualification (every ``requalify_months``
after the tier was reached with a rolling window; every 1 January with a calendar-year
window), after ``grace_months``, by one level at a time unless ``downgrade`` says
``to_qualified``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any

from pydantic import Field, model_validator

from fidelite.program.model import (
    Identifier,
    Problems,
    ProgramModel,
    as_decimal,
    mappings,
    raise_first,
    unused_fields,
)


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
        raise_first(ladder_problems(self.model_dump()))
        raise_first(tier_window_problems(self.model_dump(exclude_unset=True)))
        return self

    def index(self, tier_id: str) -> int:
        """Position of ``tier_id`` on the ladder (0 = base)."""
        return [tier.id for tier in self.levels].index(tier_id)


def ladder_problems(policy: Mapping[str, Any]) -> Problems:
    """The base level has threshold 0, thresholds increase, ids are unique.

    ``policy`` is a tier policy's fields, validated or as written (see
    :mod:`fidelite.program.model`); each problem points at the level's field.
    """
    levels = list(mappings(policy.get("levels")))
    thresholds = [(i, level.get("id"), as_decimal(level.get("threshold"))) for i, level in levels]
    if thresholds and thresholds[0][0] == 0 and thresholds[0][2] not in (None, 0):
        yield (
            ("levels", 0, "threshold"),
            ("the first tier is the base level: its threshold must be 0"),
        )
    known = [(i, tier, value) for i, tier, value in thresholds if value is not None]
    for (_, lower, low), (i, upper, high) in pairwise(known):
        if high <= low:
            yield (
                ("levels", i, "threshold"),
                (f"tier {upper!r} must have a higher threshold than {lower!r} ({low})"),
            )
    seen: set[str] = set()
    for i, level in levels:
        tier = level.get("id")
        if isinstance(tier, str):
            if tier in seen:
                yield ("levels", i, "id"), f"duplicate tier id {tier!r}"
            seen.add(tier)


def tier_window_problems(policy: Mapping[str, Any]) -> Problems:
    """``window_months`` and ``requalify_months`` only with a rolling window.

    ``policy`` is a tier policy's fields as written (validated: those set): a
    calendar-year window is the calendar year, re-qualified every 1 January, whatever
    they say.
    """
    if policy.get("window") == WindowKind.calendar_year:
        why = (
            "with window: calendar_year (the window is the calendar year, re-qualified"
            " every 1 January); remove it, or set window: rolling"
        )
        yield from unused_fields(policy, ("window_months", "requalify_months"), why)
