"""Evaluating a program's earning rules for one event: the heart of the engine.

:class:`Evaluator` is built once per program; ``evaluate`` is a pure function of
(event, member state, program state, coupon status): no clock, no I/O, so the same
event always gives the same decision and trace.

Where the time goes, and what is done once rather than per event:

- Each rule is compiled when the evaluator is built: its conditions and formulas run
  as Python when they are in the subset :mod:`fidelite.engine.native` translates
  exactly, and in CEL otherwise (per-item conditions then become one
  ``event.items.map(...)`` CEL call per event). A per-item condition run as Python
  reads each basket line's fields from the item itself, so the basket is turned into
  dictionaries only for CEL.
- The rule settings read per event are copied out of the rule (a pydantic model,
  whose attributes cost several times a dataclass's to read) into the compiled rule;
  rules without window, segments, coupon campaign or condition skip the gate checks.
- Per event type, a plan lists the rules in order and the fields expressions read;
  rules that do not handle the type contribute a constant trace line (consecutive ones
  as one group, appended at once); the type's pending delay is worked out there too.
- A rule whose only effect is ``fixed`` and that has no per-member cap nor budget
  gives the same points and trace line whenever its gates pass: both are built when
  the program loads.
- Campaign windows are compared in UTC (bounds converted once; the event's time once
  per evaluation): aware datetimes in different zones cost an offset lookup per
  comparison, two in UTC compare as plain values.
- Per event, the fields' Python values are built once and shared by all rules, by one
  function made for the fields the event type's rules read (no call per field:
  :class:`fidelite.engine.context.ContextFactory`); a CEL context (the costly part:
  every value is converted) is built only if a rule actually needs CEL, and then with
  only the fields CEL expressions read.
- Trace lines are frozen values, so equal lines are shared between decisions
  (:meth:`Evaluator.trace_line`); the trace stays complete, one line per rule.
- The decision and its earnings are built without the frozen dataclasses' generated
  ``__init__`` (:func:`fidelite.engine.decision.new_decision`): equal values, built
  for a quarter to a third less.
- The evaluation loop (:meth:`_Run.decide`) runs a rule's usual steps itself: its
  window and segment gates, and the points of a rule with neither a per-member cap nor
  a budget (its per-event cap included); methods are called only for the rest (a coupon
  campaign, a condition, effects, caps per member, budgets). The running totals are a
  list with one place per currency (in the order of their ids, which is the order of
  the earnings), not a dictionary read and written per rule.
- ``per_amount`` and ``per_item.points_per_amount`` are a rate, ``points / per``,
  worked out exactly once (:func:`fidelite.engine.rounding.rate_per`): a Decimal
  when it is a short decimal (3 per 1.50 is 2, 1 per 8 is 0.125), so an amount's
  points are one multiplication with the usual operators, exact in 28 digits (no
  division per event, and none rounded: 21.5 at 3 per 1.50 is 43, not 42.99...9
  floored to 42); a Fraction otherwise (1 per 3), the rule's total then being rounded
  as a fraction.
- Smaller, together: the outcomes read per rule are module constants (an enum
  member read through its class costs several times a global), a condition run as
  Python is called from the loop itself, ``max(points, 0)`` is a comparison, and a
  tier line is one table lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import cel

from fidelite.engine.calendar import LocalDays
from fidelite.engine.context import ContextFactory, fields_needed
from fidelite.engine.coupon import CouponStatus, check_coupon, not_applied
from fidelite.engine.decision import (
    CouponUse,
    Decision,
    Earning,
    Outcome,
    RuleTrace,
    Usage,
    new_decision,
    new_earning,
)
from fidelite.engine.event import Event, Item
from fidelite.engine.expiry import ExpiryDates
from fidelite.engine.member import MemberState, ProgramState
from fidelite.engine.native import ItemExpression, NativeExpression, translate, translate_item
from fidelite.engine.period import used_in_period
from fidelite.engine.rounding import (
    ROUNDING_MODES,
    Rate,
    award,
    beyond_largest_award,
    from_cel_number,
    rate_per,
    round_points,
    to_points,
)
from fidelite.program.definition import ProgramDefinition
from fidelite.program.expression import (
    ITEM_VARIABLES,
    RULE_VARIABLES,
    Expression,
    compile_expression,
)
from fidelite.program.rule import MAX_AWARD, Period, Rounding, Rule


@dataclass(frozen=True)
class _Check:
    """A CEL expression with, when it is in the translatable subset, its Python twin."""

    expression: Expression
    native: NativeExpression | None


@dataclass(frozen=True)
class _CompiledRule:
    """A rule with what evaluating it needs worked out once, when the program loads."""

    rule: Rule
    # The rule's settings read per event, copied out of the pydantic model: reading an
    # attribute of a model costs several times reading one of this dataclass, and each
    # rule reads about ten per event.
    id: str
    stop: bool
    gated: bool  # it has a window, segments, a coupon campaign or a condition
    windowed: bool
    coupon_campaign: str | None
    multiply_less_one: Decimal | None  # ``multiply - 1``
    # ``points / per`` exactly (see rate_per): the points of each money unit
    per_amount: Rate | None
    # per_item's (points per unit, points per money unit), a zero rate as None
    item_rates: tuple[Decimal | None, Rate | None] | None
    cap_per_event: int | None
    cap_per_member: tuple[Period, int] | None  # (period, points)
    budget: int | None
    tier_multiplier: bool
    fixed_points: int  # ``rule.fixed``
    currency: str
    currency_index: int  # its place in the evaluator's per-currency running totals
    segments: frozenset[str]
    when: _Check | None
    when_native: NativeExpression | None  # ``when`` as Python, if it is translated
    formula: _Check | None
    item_matches: Expression | None  # event.items.map(item, <per_item.when>)
    item_when: ItemExpression | None  # per_item.when as Python: (values, one Item)
    rounding: str  # the decimal module's rounding mode
    fixed_only: bool  # its only effect is ``fixed``: that many points, nothing to compute
    fixed: Decimal  # ``rule.fixed`` as a Decimal (built once, not per event)
    # The campaign window's bounds in UTC: aware datetimes of one fixed zone compare as
    # plain values, where the zones the program was written in cost an offset lookup
    # per comparison. None: no bound on that side.
    window_start: datetime | None
    window_end: datetime | None
    # Constant trace lines of its gates (frozen, shared between decisions).
    outside_window: RuleTrace
    not_in_segment: RuleTrace
    no_coupon: RuleTrace
    condition_false: RuleTrace
    # A rule whose only effect is ``fixed`` and that has no per-member cap nor budget
    # gives the same points and the same trace line on every event its gates let
    # through: both are worked out here, not per event. None for any other rule.
    constant: tuple[int, RuleTrace] | None
    # Neither constant nor with a per-member cap or a budget: its points are its raw
    # points after its per-event cap, worked out in the evaluation loop itself.
    simple: bool


@dataclass(frozen=True)
class _Plan:
    """What evaluating one event type takes: the rules in order, the fields to build.

    ``steps`` holds, in rule order, the compiled rule, or the constant trace lines of
    consecutive rules that do not handle this event type, as one tuple (frozen lines,
    shared between decisions; appended together, in order, whatever earlier rules did).
    """

    steps: tuple[_CompiledRule | tuple[RuleTrace, ...], ...]
    factory: ContextFactory
    needs_values: bool
    pending: timedelta | None  # how long this type's points stay pending (None: not at all)


class Evaluator:
    """Applies one program's rules to events.

    Thread-compatible: it keeps no per-event state, only memo tables (plans, shared
    trace lines, expiry dates per month) whose entries are pure functions of their
    keys, so a race at worst computes an equal entry twice.

    ``native=False`` runs every expression with CEL, even those the engine can run as
    Python (:mod:`fidelite.engine.native`); decisions are the same either way (tested),
    the flag exists to compare the two.
    """

    def __init__(self, program: ProgramDefinition, *, native: bool = True) -> None:
        self.program = program
        self.native = native
        ordered = sorted(enumerate(program.rules), key=lambda pair: (pair[1].priority, pair[0]))
        # Running totals are a list with one place per currency a rule gives, in the
        # order of their ids: the order the earnings and tier lines are listed in.
        currencies = sorted({program.currency_of(rule.currency) for rule in program.rules})
        self._currency_index = {currency: i for i, currency in enumerate(currencies)}
        self._currencies = tuple(enumerate(currencies))
        self._zeros = [0] * len(currencies)
        self._rules = [self._compile(rule) for _, rule in ordered]
        self._plans: dict[str, _Plan] = {}
        self._tier_multipliers = (
            {t.id: t.earn_multiplier for t in program.tiers.levels} if program.tiers else {}
        )
        # Tiers whose multiplier is not 1: only those add a ``tier:<id>`` line.
        self._boosted_tiers = frozenset(
            tier for tier, multiplier in self._tier_multipliers.items() if multiplier != 1
        )
        self._traces: dict[tuple[str, Outcome, int, str | None, str], RuleTrace] = {}
        self._tier_lines: dict[tuple[str, str, int], RuleTrace | None] = {}
        self._expiry = ExpiryDates(program.expiry, program.zone)
        # The end of a pending hold: ``days`` local calendar days later (0: none is).
        self._pending_days = LocalDays(program.zone, timedelta(days=program.pending.days))

    def _check(self, expression: Expression | None, variables: frozenset[str]) -> _Check | None:
        if expression is None:
            return None
        native = translate(expression.source, variables) if self.native else None
        return _Check(expression, native)

    def _compile(self, rule: Rule) -> _CompiledRule:
        item_matches = item_when = None
        if rule.per_item is not None and rule.per_item.when is not None:
            source = f"event.items.map(item, ({rule.per_item.when.source}))"
            item_matches = compile_expression(source, ITEM_VARIABLES)
            if self.native:
                item_when = translate_item(rule.per_item.when.source, ITEM_VARIABLES)
        effects = (rule.per_amount, rule.per_item, rule.formula, rule.multiply)
        fixed_only = all(effect is None for effect in effects)
        when = self._check(rule.when, RULE_VARIABLES)
        currency = self.program.currency_of(rule.currency)
        constant = None
        if fixed_only and rule.cap_per_member is None and rule.budget is None:
            points, outcome, note = _capped_per_event(rule.fixed, rule.cap_per_event)
            if points == 0 and outcome is Outcome.matched:
                outcome = Outcome.no_points  # as in _Run._points
            constant = (points, RuleTrace(rule.id, outcome, points, currency, note))
        return _CompiledRule(
            rule=rule,
            id=rule.id,
            stop=rule.stop,
            gated=(
                rule.window is not None
                or bool(rule.segments)
                or rule.coupon_campaign is not None
                or when is not None
            ),
            windowed=rule.window is not None,
            coupon_campaign=rule.coupon_campaign,
            multiply_less_one=None if rule.multiply is None else rule.multiply - 1,
            per_amount=_per_amount(rule),
            item_rates=_item_rates(rule),
            cap_per_event=rule.cap_per_event,
            cap_per_member=_member_cap(rule),
            budget=rule.budget,
            tier_multiplier=rule.tier_multiplier,
            fixed_points=rule.fixed,
            currency=currency,
            currency_index=self._currency_index[currency],
            segments=frozenset(rule.segments),
            when=when,
            when_native=None if when is None else when.native,
            formula=self._check(rule.formula, RULE_VARIABLES),
            item_matches=item_matches,
            item_when=item_when,
            rounding=ROUNDING_MODES[rule.rounding],
            fixed_only=fixed_only,
            fixed=Decimal(rule.fixed),
            window_start=_utc(rule.window.start) if rule.window else None,
            window_end=_utc(rule.window.end) if rule.window else None,
            outside_window=RuleTrace(rule.id, Outcome.outside_window),
            not_in_segment=RuleTrace(rule.id, Outcome.segment),
            no_coupon=RuleTrace(rule.id, Outcome.coupon, note="no coupon"),
            condition_false=RuleTrace(rule.id, Outcome.condition_false),
            constant=constant,
            simple=constant is None and rule.cap_per_member is None and rule.budget is None,
        )

    def cel_expressions(self) -> list[str]:
        """Sources of the program's expressions that run in CEL rather than as Python.

        Those cost a conversion of the event into CEL values (tens of microseconds with
        a basket); see :mod:`fidelite.engine.native` for what runs as Python.
        """
        sources: list[str] = []
        for compiled in self._rules:
            for check in (compiled.when, compiled.formula):
                if check is not None and check.native is None:
                    sources.append(check.expression.source)
            per_item = compiled.rule.per_item
            if per_item is not None and per_item.when is not None and compiled.item_when is None:
                sources.append(per_item.when.source)
        return sources

    def plan(self, event_type: str) -> _Plan:
        """The evaluation plan of one event type (built on first use, then reused)."""
        plan = self._plans.get(event_type)
        if plan is None:
            plan = self._plans[event_type] = self._make_plan(event_type)
        return plan

    def _make_plan(self, event_type: str) -> _Plan:
        steps: list[_CompiledRule | tuple[RuleTrace, ...]] = []
        python: list[Expression] = []  # read through Python values
        by_cel: list[Expression] = []  # read through the CEL context
        for compiled in self._rules:
            if event_type not in compiled.rule.on:
                line = RuleTrace(compiled.rule.id, Outcome.event_type)
                if steps and isinstance(steps[-1], tuple):
                    steps[-1] += (line,)
                else:
                    steps.append((line,))
                continue
            steps.append(compiled)
            for check in (compiled.when, compiled.formula):
                if check is not None:
                    (python if check.native else by_cel).append(check.expression)
            per_item = compiled.rule.per_item
            if (
                compiled.item_when is not None
                and per_item is not None
                and per_item.when is not None
            ):
                # Read from the items themselves: only its event and member fields.
                python.append(per_item.when)
            elif compiled.item_matches is not None:
                by_cel.append(compiled.item_matches)
        needed = fields_needed(python + by_cel)
        factory = ContextFactory(needed, self.program.zone, fields_needed(by_cel))
        policy = self.program.pending
        pending = None
        if policy.days and event_type in policy.event_types:  # as expiry.pending_until
            pending = timedelta(days=policy.days)
        return _Plan(tuple(steps), factory, bool(python + by_cel), pending)

    def context_factory(self, event_type: str) -> ContextFactory:
        """The context builder for one event type: only fields its rules read are built."""
        return self.plan(event_type).factory

    def trace_line(
        self,
        rule: str,
        outcome: Outcome,
        points: int = 0,
        currency: str | None = None,
        note: str = "",
    ) -> RuleTrace:
        """A trace line, shared with earlier decisions when equal (trace lines are frozen).

        Most lines repeat (the same rule, outcome and points), and building a frozen
        dataclass costs more than looking one up; the table is emptied when it grows
        past :data:`_TRACE_TABLE_SIZE` entries so memory stays bounded.
        """
        key = (rule, outcome, points, currency, note)
        line = self._traces.get(key)
        if line is None:
            if len(self._traces) >= _TRACE_TABLE_SIZE:
                self._traces.clear()
            line = self._traces[key] = RuleTrace(rule, outcome, points, currency, note)
        return line

    def tier_line(self, tier: str, currency: str, base: int) -> RuleTrace | None:
        """The ``tier:<id>`` trace line adding the tier's bonus on ``base`` points, if any.

        A pure function of its arguments, remembered like :meth:`trace_line`.
        """
        key = (tier, currency, base)
        lines = self._tier_lines
        line = lines.get(key)
        if line is not None or key in lines:  # one lookup when there is a bonus
            return line
        multiplier = self._tier_multipliers.get(tier, _ONE)
        bonus = to_points(Decimal(base) * (multiplier - 1), Rounding.floor)
        line = None
        if bonus > 0:
            line = RuleTrace(
                f"tier:{tier}", Outcome.matched, bonus, currency, f"x{multiplier} on {base}"
            )
        if len(self._tier_lines) >= _TRACE_TABLE_SIZE:
            self._tier_lines.clear()
        self._tier_lines[key] = line
        return line

    def evaluate(
        self,
        event: Event,
        member: MemberState,
        state: ProgramState | None = None,
        coupon_status: CouponStatus = CouponStatus.not_found,
    ) -> Decision:
        """Decide what ``event`` earns ``member``; see :mod:`fidelite.program.rule`."""
        run = _Run(self, event, member, state or _NO_STATE, coupon_status)
        return run.decide()


_TRACE_TABLE_SIZE = 100_000
_NO_STATE = ProgramState()
# Outcomes read per rule, as module constants: reading a member of an enum class goes
# through the enum's metaclass, several times the cost of reading a global.
_MATCHED = Outcome.matched
_NO_POINTS = Outcome.no_points


class _Run:
    """The evaluation of one event (private: holds the lazily built values and context).

    Slotted: one is built per event, and slots make setting its attributes, and reading
    them in every rule, cheaper than an instance dictionary. :meth:`decide` runs the
    usual steps of each rule itself (the gates, the points of a rule without per-member
    cap nor budget, the running totals), and calls a method for the others (a coupon
    campaign, a condition run by CEL, caps per member and budgets, per-item effects):
    a Python call costs about what a gate check does, and a purchase meets eight rules.
    """

    __slots__ = (
        "_context",
        "_local",
        "_money",
        "_utc",
        "_values",
        "at",
        "budget_spent",
        "coupon",
        "ev",
        "event",
        "member",
        "plan",
        "running",
        "state",
        "usage",
    )

    def __init__(
        self,
        evaluator: Evaluator,
        event: Event,
        member: MemberState,
        state: ProgramState,
        coupon_status: CouponStatus,
    ) -> None:
        self.ev = evaluator
        self.event = event
        self.at = at = event.at  # read once: an event's fields cost more than a local's
        self.member = member
        self.state = state
        event_type = event.type
        plan = evaluator._plans.get(event_type)
        self.plan = plan if plan is not None else evaluator.plan(event_type)
        self._local: datetime | None = None
        self._values: dict[str, dict[str, Any]] | None = None
        self._context: cel.Context | None = None
        self._utc: datetime | None = None
        self._money: Decimal | None = None  # the event's amount (``Event.money``), read once
        coupon = event.coupon
        self.coupon: CouponUse | None = None
        if coupon:
            self.coupon = check_coupon(evaluator.program, coupon, coupon_status, member, at)
        self.usage: list[Usage] = []
        self.budget_spent: dict[str, int] = {}
        # Points per currency so far, in the evaluator's currency order.
        self.running: list[int] = evaluator._zeros.copy()

    @property
    def local(self) -> datetime:
        """The event time in the program's zone."""
        if self._local is None:
            self._local = self.at.astimezone(self.ev.program.zone)
        return self._local

    @property
    def values(self) -> dict[str, dict[str, Any]]:
        if self._values is None:
            self._values = self.plan.factory.values(self.event, self.member, self.local)
        return self._values

    @property
    def context(self) -> cel.Context:
        if self._context is None:
            self._context = self.plan.factory.context(self.values)
        return self._context

    def _run(self, check: _Check) -> Any:
        if check.native is not None:
            return check.native(self.values)
        return check.expression.evaluate(self.context)

    def decide(self) -> Decision:
        """Each rule in order, then the tier bonus, an unused coupon and the earnings.

        A rule's gates, first failing one wins: outside its window, in none of its
        segments, no valid code of its coupon campaign (:meth:`_coupon_gate`), its
        condition not true. Its points: constant, or computed (:meth:`_raw_points`) and
        trimmed to its per-event cap here, or by :meth:`_points` for a rule with a
        per-member cap or a budget.
        """
        ev = self.ev
        traces, line = ev._traces, ev.trace_line
        trace: list[RuleTrace] = []
        running = self.running
        tier_base: list[int] | None = None  # points of the rules the tier multiplies
        coupon_gave = False  # a rule of the coupon's campaign gave points
        stopped_by: str | None = None
        for step in self.plan.steps:
            if isinstance(step, tuple):  # rules that do not handle this event type
                trace.extend(step)
                continue
            if stopped_by is not None:
                trace.append(line(step.id, Outcome.stopped, note=f"by {stopped_by}"))
                continue
            if step.gated:  # the first reason the rule does not apply, in this order
                if step.windowed:
                    utc = self._utc
                    if utc is None:
                        utc = self._utc = self.at.astimezone(UTC)
                    start, end = step.window_start, step.window_end
                    if (start is not None and utc < start) or (end is not None and utc >= end):
                        trace.append(step.outside_window)
                        continue
                segments = step.segments
                if segments and segments.isdisjoint(self.member.segments):
                    trace.append(step.not_in_segment)
                    continue
                if step.coupon_campaign is not None:
                    gate = self._coupon_gate(step)
                    if gate is not None:
                        trace.append(gate)
                        continue
                native = step.when_native
                if native is not None:  # the condition as Python
                    try:
                        values = self._values
                        if values is None:
                            values = self.values
                        result = native(values)
                    except Exception as exc:  # as a CEL runtime error (none expected)
                        trace.append(line(step.id, Outcome.condition_error, note=_short(exc)))
                        continue
                    if result is not True:
                        if result is False:
                            trace.append(step.condition_false)
                        else:
                            trace.append(self._not_true(step, result))
                        continue
                elif step.when is not None:
                    gate = self._cel_condition(step)
                    if gate is not None:
                        trace.append(gate)
                        continue
            constant = step.constant
            if constant is not None:
                points, rule_line = constant
            elif step.simple:  # _points without a per-member cap nor a budget
                try:
                    raw = self._raw_points(step)
                except Exception as exc:  # a CEL runtime error in a formula or item condition
                    trace.append(line(step.id, Outcome.condition_error, note=_short(exc)))
                    continue
                cap = step.cap_per_event
                if cap is not None and raw > cap:
                    key = (step.id, Outcome.cap_per_event, cap, step.currency,
                           f"{raw} capped at {cap} per event")  # fmt: skip
                    points = cap
                elif raw > 0:
                    key = (step.id, _MATCHED, raw, step.currency, "")
                    points = raw
                else:  # nothing; a negative formula says so
                    note = "" if raw == 0 else _negative(step, raw)
                    key = (step.id, _NO_POINTS, 0, step.currency, note)
                    points = 0
                # The table read here saves the call to trace_line on the usual hit.
                rule_line = traces.get(key) or line(*key)
            else:
                counted, rule_line = self._points(step)
                if counted is None:
                    trace.append(rule_line)
                    continue
                points = counted
            index = step.currency_index
            if points > MAX_AWARD - running[index]:  # never true in a real program
                trace.append(self._beyond_largest(step, points))
                continue
            if step.coupon_campaign is not None and points > 0:
                coupon_gave = True  # the gate let it through: the event's code is used
            running[index] += points
            if step.tier_multiplier:
                if tier_base is None:
                    tier_base = ev._zeros.copy()
                tier_base[index] += points
            trace.append(rule_line)
            # ``stop`` ends evaluation after a rule that gave points (its line has
            # them); one that gave 0 leaves later rules to run.
            if step.stop and points > 0:
                stopped_by = step.id
        if tier_base is not None:
            self._apply_tier_multiplier(tier_base, trace)
        coupon = self.coupon
        if coupon is not None and coupon.accepted and not coupon_gave:
            coupon, note = not_applied(coupon)
            trace.append(line(f"coupon:{coupon.campaign}", Outcome.coupon_unused, note=note))
        return new_decision(
            self.event.id,
            self.member.ref,
            self.at,
            self._earnings() if any(running) else [],
            trace,
            self.usage,
            self.budget_spent,
            coupon,
        )

    def _points(self, compiled: _CompiledRule) -> tuple[int | None, RuleTrace]:
        """The points of a rule whose gates passed, after its caps and budget, with its
        trace line; None for the points if it does not apply after all (a CEL error, no
        budget left), the line saying why. Records its cap usage and budget spending."""
        rule_id, line = compiled.id, self.ev.trace_line
        if compiled.fixed_only:
            raw = compiled.fixed_points
        else:
            try:
                raw = self._raw_points(compiled)
            except Exception as exc:  # a CEL runtime error in a formula or item condition
                return None, line(rule_id, Outcome.condition_error, note=_short(exc))
            if raw < 0:
                return 0, line(rule_id, Outcome.no_points, 0, compiled.currency,
                               _negative(compiled, raw))  # fmt: skip
        points, outcome, note = raw, Outcome.matched, ""
        per_event = compiled.cap_per_event
        if per_event is not None:
            points, outcome, note = _capped_per_event(raw, per_event)
        cap = compiled.cap_per_member
        if cap is not None:
            period, cap_points = cap
            # what the rule gave in any period overlapping this one, whatever its kind
            key, used = used_in_period(self.member.rule_points, rule_id, period, self.local)
            left = max(cap_points - used, 0)
            if points > left:
                note = f"{points} capped at {left} left for {key}"
                points, outcome = left, Outcome.cap_per_member
        budget = compiled.budget
        if budget is not None:
            left = max(budget - self.state.budget_used.get(rule_id, 0), 0)
            if left == 0:
                return None, line(
                    rule_id, Outcome.rule_budget_exhausted, currency=compiled.currency
                )
            if points > left:
                note = f"{points} trimmed to the {left} left in the budget"
                points = left
        if points > MAX_AWARD - self.running[compiled.currency_index]:
            return None, self._beyond_largest(compiled, points)
        if budget is not None:
            self.budget_spent[rule_id] = points
        if points == 0 and outcome is Outcome.matched:
            outcome = Outcome.no_points
        if cap is not None and points > 0:
            self.usage.append(Usage(rule_id, key, points))
        return points, line(rule_id, outcome, points, compiled.currency, note)

    def _beyond_largest(self, compiled: _CompiledRule, points: int) -> RuleTrace:
        """The line of a rule whose points, after its caps and budget, would take the
        event's points of its currency past the largest award the ledger can post: the
        rule gives nothing (traced ``condition_error``), so the event is still recorded,
        with what its other rules gave, in ``program simulate`` and the import alike."""
        before = self.running[compiled.currency_index]
        note = beyond_largest_award(points, before, compiled.currency)
        return self.ev.trace_line(compiled.id, Outcome.condition_error, note=note)

    def _coupon_gate(self, compiled: _CompiledRule) -> RuleTrace | None:
        """Why a rule of a coupon campaign does not apply (no code, or one refused or of
        another campaign), or None if the event's code is a valid one of its campaign."""
        coupon = self.coupon
        if coupon is None:
            return compiled.no_coupon
        if coupon.campaign is not None and coupon.campaign != compiled.coupon_campaign:
            # a code of another campaign, accepted or not: its refusal is that campaign's
            return self.ev.trace_line(compiled.id, Outcome.coupon, note="other campaign")
        if not coupon.accepted:
            return self.ev.trace_line(compiled.id, Outcome.coupon, note=coupon.reason)
        return None

    def _cel_condition(self, compiled: _CompiledRule) -> RuleTrace | None:
        """Why a rule whose condition runs in CEL does not apply (the condition is false,
        fails or is not a boolean), or None if it is true."""
        assert compiled.when is not None
        try:
            result = compiled.when.expression.evaluate(self.context)
        except Exception as exc:  # CEL runtime errors: missing key, bad types
            return self.ev.trace_line(compiled.id, Outcome.condition_error, note=_short(exc))
        return None if result is True else self._not_true(compiled, result)

    def _not_true(self, compiled: _CompiledRule, result: Any) -> RuleTrace:
        """The line of a rule whose condition gave ``result``, not true."""
        if result is False:
            return compiled.condition_false
        note = f"condition gave {result!r}, not a boolean"
        return self.ev.trace_line(compiled.id, Outcome.condition_error, note=note)

    def _raw_points(self, compiled: _CompiledRule) -> int:
        """A rule's points before its caps and budget: ``multiply`` on the running total
        of its currency, or the sum of its other effects, rounded once. It may be below
        0 (a negative ``formula``): the caller gives 0 then (:func:`_negative` says why)."""
        if compiled.multiply_less_one is not None:
            base = Decimal(self.running[compiled.currency_index])
            return award(base * compiled.multiply_less_one, compiled.rounding)
        # Exact sums and products (a Decimal rate is short: see SHORT_PLACES); a rate
        # that is not makes its share a Fraction, added to the rest before the rounding.
        total = compiled.fixed
        share: Fraction | None = None
        rate = compiled.per_amount
        if rate is not None:
            money = self._money
            if money is None:
                money = self._money = self.event.money
            if isinstance(rate, Decimal):
                total += money * rate
            else:
                share = rate * Fraction(money)
        if compiled.item_rates is not None:
            items = self.event.items
            if items:
                item_points, item_share = self._item_points(compiled, items)
                total += item_points
                if item_share is not None:
                    share = item_share if share is None else share + item_share
        if compiled.formula is not None:
            total += from_cel_number(self._run(compiled.formula))
        # Points beyond the largest award are turned away after the caps (see
        # _beyond_largest), so a capped rule still gives its cap.
        if share is not None:
            return award(Fraction(total) + share, compiled.rounding)
        # (A total beyond 28 digits, from an absurd points_per_unit, may fail to round
        # in a half mode: the rule then gives nothing either, its error traced.)
        points: int = round_points(total, compiled.rounding)
        return points

    def _item_points(
        self, compiled: _CompiledRule, items: list[Item]
    ) -> tuple[Decimal, Fraction | None]:
        """The points of the basket lines the rule's ``per_item.when`` is true for: an
        exact Decimal, and the share of a ``points_per_amount`` without a finite
        decimal expansion as a Fraction (None when there is none). The matching lines'
        totals are summed first, then multiplied by the rate once: exact either way.

        A condition run as Python reads each line's fields from the item itself, so
        neither a per-line dictionary nor a copy of the values is built; it cannot raise
        (:mod:`fidelite.engine.native`), so checking each line as it is summed is the
        same as checking them all first. A CEL condition is one ``map`` over the basket,
        before any sum; its error reaches the evaluation loop as the rule's.
        """
        assert compiled.item_rates is not None
        per_unit, rate = compiled.item_rates
        units = money = _ZERO
        native = compiled.item_when
        if native is not None:
            values = self._values
            if values is None:  # built here as before, though the condition may not read it
                values = self.values
            for item in items:
                if native(values, item) is True:
                    # A zero rate (None) would add an exact zero: skipping it leaves the sum.
                    if per_unit is not None:
                        units += item.quantity
                    if rate is not None:
                        money += item.total
            return _item_sum(per_unit, units, rate, money)
        if compiled.item_matches is not None:
            matches: list[Any] = compiled.item_matches.evaluate(self.context)
        else:
            matches = [True] * len(items)
        for item, match in zip(items, matches, strict=True):
            if match is True:
                if per_unit is not None:
                    units += item.quantity
                if rate is not None:
                    money += item.total
        return _item_sum(per_unit, units, rate, money)

    def _apply_tier_multiplier(self, tier_base: list[int], trace: list[RuleTrace]) -> None:
        """The ``tier:<id>`` line of each currency whose multiplied points earn a bonus.

        A currency with no such points (0) has no line (:meth:`Evaluator.tier_line`
        gives none for a base of 0), so only those with points are looked up."""
        ev = self.ev
        tier = self.member.tier or ""
        if tier not in ev._boosted_tiers:  # its multiplier is 1, or it has none
            return
        running = self.running
        for index, currency in ev._currencies:
            base = tier_base[index]
            if base:
                line = ev.tier_line(tier, currency, base)
                if line is not None:
                    if line.points > MAX_AWARD - running[index]:  # never in a real program
                        note = beyond_largest_award(line.points, running[index], currency)
                        line = ev.trace_line(line.rule, Outcome.condition_error, note=note)
                    trace.append(line)
                    running[index] += line.points

    def _earnings(self) -> list[Earning]:
        """One earning per currency with points, in the order of their ids (all with
        the event's expiry and pending dates)."""
        at, ev = self.at, self.ev
        expiry = ev._expiry.expires_at(at, self._local)
        # Local calendar days, as expiry: the same wall-clock time ``days`` later.
        pending_until = None if self.plan.pending is None else ev._pending_days.add(at)
        running = self.running
        earnings = []  # a loop: a list comprehension is a function call of its own (3.11)
        for index, currency in ev._currencies:
            points = running[index]
            if points > 0:
                earnings.append(new_earning(currency, points, expiry, pending_until))
        return earnings


_ONE = Decimal(1)
_ZERO = Decimal(0)


def _capped_per_event(raw: int, cap: int | None) -> tuple[int, Outcome, str]:
    """A rule's points, outcome and note after its per-event cap (before any other)."""
    if cap is not None and raw > cap:
        return cap, Outcome.cap_per_event, f"{raw} capped at {cap} per event"
    return raw, Outcome.matched, ""


def _item_sum(
    per_unit: Decimal | None, units: Decimal, rate: Rate | None, money: Decimal
) -> tuple[Decimal, Fraction | None]:
    """The points of ``units`` units and ``money`` money units of matching lines."""
    total = _ZERO if per_unit is None else per_unit * units
    if rate is None:
        return total, None
    if isinstance(rate, Decimal):
        return total + money * rate, None
    return total, rate * Fraction(money)


def _per_amount(rule: Rule) -> Rate | None:
    """The points of each money unit of the rule's ``per_amount``, exactly."""
    per_amount = rule.per_amount
    if per_amount is None:
        return None
    return rate_per(per_amount.points, per_amount.per)


def _item_rates(rule: Rule) -> tuple[Decimal | None, Rate | None] | None:
    """per_item's points per unit and per money unit (``points_per_amount / per``,
    exactly): a zero rate as None (it adds an exact zero, so it is skipped)."""
    per_item = rule.per_item
    if per_item is None:
        return None
    amount = per_item.points_per_amount
    return (
        per_item.points_per_unit or None,
        rate_per(amount, per_item.per) if amount else None,
    )


def _member_cap(rule: Rule) -> tuple[Period, int] | None:
    cap = rule.cap_per_member
    return None if cap is None else (cap.period, cap.points)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _short(exc: Exception) -> str:
    text = str(exc).split(". ")[0]
    return f"{type(exc).__name__}: {text}"[:200]


def _negative(compiled: _CompiledRule, points: int) -> str:
    """The note of a rule whose effects came to ``points`` < 0: no points, and, when
    its ``formula`` is what made them negative, that it did (a rule never takes points
    back; a penalty is an adjustment). Off the usual path: only runs for such a rule."""
    if compiled.formula is None or compiled.multiply_less_one is not None:
        return ""  # (with ``multiply`` the formula is not what counts)
    alone = compiled.fixed == 0 and compiled.per_amount is None and compiled.item_rates is None
    if alone:
        return f"formula gave {points}: no points"
    return f"came to {points} with its formula: no points"
