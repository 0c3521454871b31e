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

So a rule that can only give 0 points (``fixed: 0`` alone) does nothing at all, even
with ``stop: true``, and an effect that gives 0 (``fixed: 0``, ``points_per_unit: 0``)
next to others adds nothing: both are errors, as is a multiplier with nothing before it
to multiply (:mod:`fidelite.program.consistency`).

Refunds are not evaluated by rules: a refund reverses, in proportion, what its purchase
earned (:class:`fidelite.program.policy.RefundPolicy`), so ``on: [refund]`` is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
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

MAX_AWARD = 10**15
"""The largest number of points one rule may give, as the ledger's largest credit
(``fidelite.ledger.validation.MAX_POINTS``): far beyond any real award (amounts are at
most 10^10), well inside the 64-bit points columns. A ``fixed`` above it is an error
when the program loads; a computed award above it gives nothing and is traced
(:mod:`fidelite.engine.rounding`)."""


def _postable(points: int) -> int:
    if points > MAX_AWARD:
        raise ValueError(
            f"{points} is more than the largest award ({MAX_AWARD} points):"
            " the ledger could never post it"
        )
    return points


PURCHASE = "purchase"
REFUND = "refund"
MEMBER_ACTIONS = frozenset({"signup", "birthday", "profile_completed", "review", "social"})
"""The standard member actions (sign-up, birthday, profile completed, review, social
action): every program records them, as activity, whether or not a rule earns on them,
so a business can send them before it rewards them. Any other custom type needs a rule
or a place in the program's ``events``."""

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


_RATES = ("points_per_unit", "points_per_amount")


def per_item_problems(per_item: Mapping[str, Any]) -> Problems:
    """A per-item effect gives something, neither rate is a written 0 next to the other
    (it adds nothing), and ``per`` only with ``points_per_amount``.

    ``per_item`` is its fields as written (validated: those set; see
    :mod:`fidelite.program.model`).
    """
    rates = [as_decimal(per_item.get(name, 0)) for name in _RATES]
    if rates == [0, 0]:
        yield (), "set points_per_unit and/or points_per_amount"
        return
    for name, rate, other in zip(_RATES, rates, reversed(_RATES), strict=True):
        if rate == 0 and per_item.get(name) is not None:
            why = f"at 0: the lines' points come from {other} alone; remove it"
            yield from unused_fields(per_item, (name,), why)
    if rates[1] == 0:
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


def offset_problems(section: Mapping[str, Any], fields: tuple[str, ...], zone: tzinfo) -> Problems:
    """Each of ``fields`` (dates of ``section``, as written or validated) written with
    an offset the program's ``zone`` uses at other times of the year but not at that
    instant: the winter offset on a summer date (``+01:00`` in July in Europe/Paris)
    or the reverse. The date stands for another local time than the one written (an
    hour off), which is most likely a copy from a date across a change of time.

    An offset the zone never has around that date (``Z`` in Europe/Paris, any offset in
    a UTC program) is taken as meant: it names the instant it says. So is a UTC offset
    of zero (``Z`` or ``+00:00``, which cannot be told apart once read) even where the
    zone is at ``+00:00`` part of the year (Europe/London in winter), and a local time
    that the zone skips (in the hour of a spring change of time), which no offset can
    write as it stands."""
    for field in fields:
        value = as_aware_datetime(section.get(field))
        if value is None:
            continue
        written = value.utcoffset()
        if written == timedelta(0) or _skipped(value.replace(tzinfo=None), zone):
            continue
        try:
            local = value.astimezone(zone)
        except (OverflowError, ValueError):
            continue
        actual = local.utcoffset()
        if written is None or actual is None or written == actual:
            continue
        if written not in _offsets_around(local):
            continue
        shown = value.replace(tzinfo=None).isoformat()
        yield (
            (field,),
            (
                f"{shown}{_offset(written)} has the offset {_offset(written)}, but {zone} is at"
                f" {_offset(actual)} then: it is {local.replace(tzinfo=None).isoformat()} local"
                f" time, not {shown}; write {shown}{_offset(actual)} (or the time in UTC with Z)"
            ),
        )


def _skipped(wall: datetime, zone: tzinfo) -> bool:
    """Whether the local time ``wall`` (naive) does not exist in ``zone``: it falls in
    the hour skipped at a change of time, so it reads back as another local time."""
    try:
        back = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    except (OverflowError, ValueError):
        return False
    return back.replace(tzinfo=None) != wall


def _offsets_around(local: datetime) -> set[timedelta]:
    """The offsets of ``local``'s zone over the half-years around it (both sides of a
    change of time)."""
    found = set()
    for days in (-183, -91, 91, 183):
        try:
            offset = (local + timedelta(days=days)).utcoffset()
        except OverflowError:
            continue
        if offset is not None:
            found.add(offset)
    return found


def _offset(delta: timedelta) -> str:
    """``+02:00``, ``-05:30``: an offset as ISO 8601 writes it."""
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


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
    fixed: Annotated[int, AfterValidator(_postable)] = Field(default=0, ge=0)
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
        fields = self.model_dump(exclude_unset=True)
        raise_first(effect_problems(fields))
        raise_first(rule_setting_problems(fields))
        return self


def effect_problems(rule: Mapping[str, Any]) -> Problems:
    """A rule has an effect that can give points, and a multiplier rule has no other.

    A rule whose only effect is a written zero (``fixed: 0``, ``formula: '0'``) is
    refused like one without any: it gives 0 points to every event, and a rule that
    gives nothing does nothing. Not even with ``stop: true``: evaluation stops only
    after a stop rule that gave points (more than 0), so such a rule cannot block the
    rules after it. Its only trace would be a ``no_points`` line; it spends no budget,
    counts toward no cap and uses no coupon.

    ``rule`` is the rule's fields as written (validated: those set; see
    :mod:`fidelite.program.model`); a ``fixed`` that does not parse counts as giving
    points.
    """
    additive = gives_points_directly(rule)
    if rule.get("multiply") is not None and additive:
        yield ("multiply",), "a multiplier rule ('multiply') cannot also give points directly"
    if rule.get("multiply") is None and not additive:
        zeros = _zero_effects(rule)
        if zeros:
            message = (
                f"'{zeros[0]}' does nothing at 0, and it is the rule's only effect: a rule"
                " that gives no points does nothing (with stop: true it does not stop the"
                " rules after it either: stop ends evaluation only after a rule that gave"
                " points); give it an effect (per_amount, per_item, fixed above 0, formula"
                " or multiply), or remove the rule"
            )
            yield (zeros[0],), message
        else:
            yield (), "a rule needs an effect: per_amount, per_item, fixed, formula or multiply"


def gives_points_directly(rule: Mapping[str, Any]) -> bool:
    """Whether the rule has an effect that gives points itself (``per_amount``,
    ``per_item``, ``fixed`` other than 0, ``formula`` other than the number 0), rather
    than only ``multiply`` or nothing. ``rule`` is its fields, validated or as written;
    a value that does not parse counts as giving points."""
    if any(rule.get(name) is not None for name in ("per_amount", "per_item")):
        return True
    return any(
        rule.get(name) is not None and name not in _zero_effects(rule)
        for name in ("fixed", "formula")
    )


def _zero_effects(rule: Mapping[str, Any]) -> list[str]:
    """The rule's effects written as a zero: ``fixed: 0``, or a ``formula`` that is
    the number 0 (``'0'``, ``'0.0'``), which gives 0 points to every event."""
    zeros = []
    fixed = rule.get("fixed")
    if fixed is not None and as_decimal(fixed) == 0:
        zeros.append("fixed")
    formula = rule.get("formula")
    if isinstance(formula, str) and as_decimal(formula) == 0:
        zeros.append("formula")
    return zeros


def rule_setting_problems(rule: Mapping[str, Any]) -> Problems:
    """No setting that the rule's other settings make do nothing: an effect written as
    0 next to others (``fixed: 0``, ``formula: '0'``: it adds nothing to their points),
    ``rounding`` on points that are always whole, a ``cap_per_event`` or
    ``cap_per_member`` that a smaller bound keeps from ever trimming anything.

    ``rule`` is the rule's fields as written (validated: those set; see
    :mod:`fidelite.program.model`). A value that does not parse proves nothing.
    """
    zeros = _zero_effects(rule)
    others = [
        name
        for name in ("per_amount", "per_item", "fixed", "formula", "multiply")
        if rule.get(name) is not None and name not in zeros
    ]
    if zeros and others:
        why = f"at 0: it adds no points to the rule's {', '.join(others)}; remove it"
        yield from unused_fields(rule, zeros, why)
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
