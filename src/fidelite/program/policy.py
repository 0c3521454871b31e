"""Program-wide policies: expiry, pending points and refunds.

These decide dates and amounts that the ledger then records; they are declared once
per program so every rule and every import path applies them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from fidelite.program.model import (
    Identifier,
    Problems,
    ProgramModel,
    as_decimal,
    raise_first,
    unused_fields,
)


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


_EXPIRY_SETTINGS = ("months", "rounding", "warn_days")
"""What an expiry policy says beyond its mode: all of it does nothing if points never expire."""


class ExpiryPolicy(ProgramModel):
    """When points expire, and how many days before members are warned."""

    mode: ExpiryMode = ExpiryMode.never
    months: int | None = Field(default=None, ge=1, le=240)
    rounding: ExpiryRounding = ExpiryRounding.none
    warn_days: int = Field(default=30, ge=0, le=365)

    @model_validator(mode="after")
    def _months_required(self) -> ExpiryPolicy:
        raise_first(expiry_problems(self.model_dump(exclude_unset=True)))
        return self


def expiry_problems(policy: Mapping[str, Any]) -> Problems:
    """``months`` is set unless points never expire; ``rounding`` only with after_earning;
    no other field when points never expire (``months: 12`` without a mode would
    otherwise leave every point without an expiry date).

    ``policy`` is the expiry policy's fields as written (validated: those set; see
    :mod:`fidelite.program.model`).
    """
    if "mode" not in policy:
        why = (
            "without a mode: points never expire (mode: never is the default);"
            " add mode: after_earning or mode: inactivity"
        )
        yield from unused_fields(policy, _EXPIRY_SETTINGS, why)
    elif policy["mode"] == ExpiryMode.never:
        why = (
            "with mode: never (points never expire);"
            " remove it, or set mode: after_earning or mode: inactivity"
        )
        yield from unused_fields(policy, _EXPIRY_SETTINGS, why)
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

    @model_validator(mode="after")
    def _window_set(self) -> PendingPolicy:
        raise_first(pending_problems(self.model_dump(exclude_unset=True)))
        return self


def pending_problems(policy: Mapping[str, Any]) -> Problems:
    """``event_types`` only with a return window (``days`` above 0).

    ``policy`` is the pending policy's fields as written (validated: those set).
    """
    if as_decimal(policy.get("days", 0)) == 0:
        why = (
            "while days is 0: points are available at once;"
            " set days to the return window (e.g. days: 14)"
        )
        yield from unused_fields(policy, ("event_types",), why)


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


def refund_problems(policy: Mapping[str, Any], tiers: object) -> Problems:
    """``reevaluate_tier`` only in a program with tiers (``tiers``: the program's).

    ``policy`` is the refund policy's fields as written (validated: those set).
    """
    if tiers is None:
        why = "in a program without tiers; remove it, or add a 'tiers:' section"
        yield from unused_fields(policy, ("reevaluate_tier",), why)
