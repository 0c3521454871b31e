"""Earning rules: when a rule applies to an event and how many points it gives.

A rule applies when the event's type is in ``on``, the event falls in the rule's
campaign window, the member is in one of its segments (if any), the event used a
coupon of its campaign (if any) and its CEL condition ``when`` holds. Its points are
the sum of its effects (``per_amount``, ``per_item``, ``fixed``, ``formula``) or, for a
multiplier rule, ``(multiply - 1) x`` the points of the rules before it; then the
per-event cap, the per-member period cap and the campaign budget trim them, in that
order. Rules run in ascending ``priority`` (then file order); ``stop`` ends evaluation
after a rule that gave points (more than 0, after caps and budget): a stop rule that
gives nothing, because its effects came to 0, a cap is used up or its budget is spent,
leaves the later rules to run, as a rule that did not apply does.

Refunds are not evaluated by rules: a refund reverses, in proportion, what its purchase
earned (:class:`fidelite.program.policy.RefundPolicy`), so ``on: [refund]`` is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from fidelite.program.expression import Condition, Formula, ItemCondition
from fidelite.program.model import (
    Identifier,
    Problems,
    ProgramModel,
    ProgramTime,
    as_aware_datetime,
    as_decimal,
    raise_first,
    unused_fields,
)

REFUND = "refund"

REFUND_NOT_EARNED = (
    "a refund is not evaluated by rules: it reverses, in proportion to the amount refunded,"
    " what its purchase earned (see 'refunds:')"
)


def _not_refund(event_type: str) -> str:
    if event_type == REFUND:
        raise ValueError(REFUND_NOT_EARNED)
    return event_type


EventType = Annotated[Identifier, AfterValidator(_not_refund)]
"""An event type a rule can handle: ``purchase`` or any action name, never ``refund``."""


class Rounding(StrEnum):
    """How a fractional number of points becomes an integer."""

    floor = "floor"
    ceil = "ceil"
    half_up = "half_up"
    half_even = "half_even"


class Period(StrEnum):
    """Calendar periods (in the program's zone) for per-member caps."""

    day = "day"
    week = "week"
    month = "month"
    year = "year"
    ever = "ever"


class PerAmount(ProgramModel):
    """``points`` for every ``per`` money units of the event amount."""

    points: Decimal = Field(gt=0)
    per: Decimal = Field(default=Decimal(1), gt=0)


class PerItem(ProgramModel):
    """Points for each basket line matching ``when`` (all lines if omitted).

    Per unit bought (``points_per_unit``) and/or per money unit of the line total
    (``points_per_amount`` for every ``per`` units of price x quantity).
    """

    when: ItemCondition | None = None
    points_per_unit: Decimal = Field(default=Decimal(0), ge=0)
    points_per_amount: Decimal = Field(default=Decimal(0), ge=0)
    per: Decimal = Field(default=Decimal(1), gt=0)

    @model_validator(mode="after")
    def _gives_something(self) -> PerItem:
        raise_first(per_item_problems(self.model_dump(exclude_unset=True)))
        return self


def per_item_problems(per_item: Mapping[str, Any]) -> Problems:
    """A per-item effect gives something, and ``per`` only with ``points_per_amount``.

    ``per_item`` is its fields as written (validated: those set; see
    :mod:`fidelite.program.model`).
    """
    rates = [as_decimal(per_item.get(name, 0)) for name in ("points_per_unit", "points_per_amount")]
    if rates == [0, 0]:
        yield (), "set points_per_unit and/or points_per_amount"
    elif rates[1] == 0:
        why = (
            "without points_per_amount (it is the money amount each points_per_amount is"
            " given for); remove it, or set points_per_amount"
        )
        yield from unused_fields(per_item, ("per",), why)


class MemberCap(ProgramModel):
    """At most ``points`` from this rule per member per calendar ``period``."""

    points: int = Field(gt=0)
    period: Period


class Window(ProgramModel):
    """A campaign window: the rule applies from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: ProgramTime | None = None
    end: ProgramTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        raise_first(window_problems(self.model_dump()))
        return self

    def contains(self, at: datetime) -> bool:
        """Whether ``at`` falls inside the window."""
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


def window_problems(window: Mapping[str, Any]) -> Problems:
    """A window has a bound, and its end is after its start (its fields, validated or as
    written): a window without either is no limit at all."""
    if window.get("start") is None and window.get("end") is None:
        yield (), "'window' does nothing without start or end; remove it, or set start and/or end"
    start = as_aware_datetime(window.get("start"))
    end = as_aware_datetime(window.get("end"))
    if start is not None and end is not None and end <= start:
        yield ("end",), "end must be after start"


class Rule(ProgramModel):
    """One earning rule (see the module docstring for evaluation order)."""

    id: Identifier
    description: str = ""
    on: list[EventType] = Field(min_length=1, description="event types this rule handles")
    when: Condition | None = None
    segments: list[Identifier] = Field(
        default_factory=list, description="member must be in one of these (empty: anyone)"
    )
    window: Window | None = None
    coupon_campaign: Identifier | None = None
    currency: Identifier | None = None
    priority: int = 100
    stop: bool = False

    per_amount: PerAmount | None = None
    per_item: PerItem | None = None
    fixed: int = Field(default=0, ge=0)
    formula: Formula | None = None
    multiply: Decimal | None = Field(default=None, gt=1)
    rounding: Rounding = Rounding.floor
    tier_multiplier: bool = Field(
        default=True, description="the member's tier multiplier applies to these points"
    )

    cap_per_event: int | None = Field(default=None, gt=0)
    cap_per_member: MemberCap | None = None
    budget: int | None = Field(default=None, gt=0, description="total points this rule may give")

    def may_spend_budget(self, event_type: str, at: datetime) -> bool:
        """Whether an event of ``event_type`` at ``at`` could take points from this rule's
        budget: the rule has one, handles that type, and ``at`` is inside its window.

        Writers lock a budget (:func:`fidelite.store.locking.lock_shared`) only for events
        where this holds: the lock serialises every writer until it commits, and a
        campaign that has ended, or not begun, can spend nothing.
        """
        if self.budget is None or event_type not in self.on:
            return False
        return self.window is None or self.window.contains(at)

    @model_validator(mode="after")
    def _has_effect(self) -> Rule:
        raise_first(effect_problems(self.model_dump()))
        raise_first(rule_setting_problems(self.model_dump(exclude_unset=True)))
        return self


def effect_problems(rule: Mapping[str, Any]) -> Problems:
    """A rule has an effect, and a multiplier rule has no other.

    ``rule`` is the rule's fields, validated or as written (see
    :mod:`fidelite.program.model`); a ``fixed`` that does not parse counts as set.
    """
    fixed = rule.get("fixed", 0)
    gives_fixed = fixed is not None and as_decimal(fixed) != 0
    additive = gives_fixed or any(
        rule.get(name) is not None for name in ("per_amount", "per_item", "formula")
    )
    if rule.get("multiply") is not None and additive:
        yield ("multiply",), "a multiplier rule ('multiply') cannot also give points directly"
    if rule.get("multiply") is None and not additive:
        yield (), "a rule needs an effect: per_amount, per_item, fixed, formula or multiply"


def rule_setting_problems(rule: Mapping[str, Any]) -> Problems:
    """No setting that the rule's other settings make do nothing: ``rounding`` on points
    that are always whole, a ``cap_per_event`` or ``cap_per_member`` that a smaller
    bound keeps from ever trimming anything.

    ``rule`` is the rule's fields as written (validated: those set; see
    :mod:`fidelite.program.model`). A value that does not parse proves nothing.
    """
    whole = _whole_points(rule)
    if whole is not None:
        why = f"on this rule: its points are always whole ({whole}); remove it"
        yield from unused_fields(rule, ("rounding",), why)
    budget = as_decimal(rule.get("budget"))
    bounds: list[tuple[Decimal, str]] = []
    fixed = _fixed_only(rule)
    if fixed is not None:
        bounds.append((fixed, f"the rule always gives fixed: {fixed} points"))
    member_cap = rule.get("cap_per_member")
    if isinstance(member_cap, Mapping):
        points = as_decimal(member_cap.get("points"))
        period = member_cap.get("period")
        if points is not None and isinstance(period, str):
            per = "in all" if period == Period.ever else f"a {period}"
            bounds.append((points, f"cap_per_member gives at most {points} points {per}"))
        if points is not None and budget is not None and budget <= points:
            why = (
                f"with budget: {budget}: the rule gives at most {budget} points in all,"
                f" no more than cap_per_member.points ({points}) to one member;"
                " remove it, or lower its points below the budget"
            )
            yield from unused_fields(rule, ("cap_per_member",), why)
    if budget is not None:
        bounds.append((budget, f"its budget gives at most {budget} points in all"))
    cap = as_decimal(rule.get("cap_per_event"))
    if cap is not None and bounds:
        bound, reason = min(bounds, key=lambda pair: pair[0])
        if bound <= cap:
            why = f"at {cap}: {reason}, never more in one event; remove it"
            yield from unused_fields(rule, ("cap_per_event",), why)


_COMPUTED = ("per_amount", "per_item", "formula", "multiply")
"""The effects whose points depend on the event (all but ``fixed``)."""


def _fixed_only(rule: Mapping[str, Any]) -> Decimal | None:
    """The rule's ``fixed`` if that is its only effect (as written), else None."""
    if any(rule.get(name) is not None for name in _COMPUTED):
        return None
    fixed = as_decimal(rule.get("fixed"))
    return fixed if fixed else None


def _whole_points(rule: Mapping[str, Any]) -> str | None:
    """What makes the rule's points always a whole number, before rounding (``fixed:
    50``), or None when they may have a fraction (or a value does not parse)."""
    if rule.get("per_amount") is not None or rule.get("formula") is not None:
        return None
    if rule.get("multiply") is not None:
        factor = as_decimal(rule.get("multiply"))
        if factor is None or factor != factor.to_integral_value():
            return None
        return f"multiply: {factor} on the whole points of the rules before it"
    reasons = []
    fixed = as_decimal(rule.get("fixed", 0))
    if fixed is None:
        return None
    if fixed:
        reasons.append(f"fixed: {fixed}")
    per_item = rule.get("per_item")
    if per_item is not None:
        if not isinstance(per_item, Mapping):
            return None
        unit = as_decimal(per_item.get("points_per_unit", 0))
        if unit is None or unit != unit.to_integral_value():
            return None
        if as_decimal(per_item.get("points_per_amount", 0)) != 0:
            return None
        reasons.append(f"points_per_unit: {unit} per unit bought")
    return ", ".join(reasons) or None
