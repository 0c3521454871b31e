"""Program-wide policies: expiry, pending points and refunds.

These decide dates and amounts that the ledger then records; they are declared once
per program so every rule and every import path applies them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from fidelite.program.model import Identifier, Problems, ProgramModel, raise_first


class ExpiryMode(StrEnum):
    """How earned points expire."""

    never = "never"
    after_earning = "after_earning"  # N months after the earn date
    inactivity = "inactivity"  # all points lapse after N months without activity


class ExpiryRounding(StrEnum):
    """Where an ``after_earning`` expiry date is pushed to (in the program's zone)."""

    none = "none"
    end_of_month = "end_of_month"
    end_of_year = "end_of_year"


class ExpiryPolicy(ProgramModel):
    """When points expire, and how many days before members are warned."""

    mode: ExpiryMode = ExpiryMode.never
    months: int | None = Field(default=None, ge=1, le=240)
    rounding: ExpiryRounding = ExpiryRounding.none
    warn_days: int = Field(default=30, ge=0, le=365)

    @model_validator(mode="after")
    def _months_required(self) -> ExpiryPolicy:
        raise_first(expiry_problems(self.model_dump()))
        return self


def expiry_problems(policy: Mapping[str, Any]) -> Problems:
    """``months`` is set unless points never expire; ``rounding`` only with after_earning.

    ``policy`` is the expiry policy's fields, validated or as written (see
    :mod:`fidelite.program.model`).
    """
    mode = policy.get("mode", ExpiryMode.never)
    if mode in (ExpiryMode.after_earning, ExpiryMode.inactivity) and policy.get("months") is None:
        yield ("months",), f"'months' is required when mode is {mode}"
    rounding = policy.get("rounding", ExpiryRounding.none)
    if mode == ExpiryMode.inactivity and rounding in (
        ExpiryRounding.end_of_month,
        ExpiryRounding.end_of_year,
    ):
        yield ("rounding",), "'rounding' only applies to mode after_earning"


class PendingPolicy(ProgramModel):
    """Points from these event types stay pending until the return window closes."""

    days: int = Field(default=0, ge=0, le=365)
    event_types: list[Identifier] = Field(default_factory=lambda: ["purchase"])


class Shortfall(StrEnum):
    """What a refund does when the points it reverses were already spent.

    ``debt``: the member's balance goes negative (explicit debt, reported);
    ``within_balance``: reverse only what the member still holds, the rest is written
    off and reported; ``reject``: the refund's points reversal is refused.
    """

    debt = "debt"
    within_balance = "within_balance"
    reject = "reject"


class RefundPolicy(ProgramModel):
    """Refunds reverse, in proportion to the refunded amount, what a purchase earned."""

    shortfall: Shortfall = Shortfall.within_balance
    reevaluate_tier: bool = True
