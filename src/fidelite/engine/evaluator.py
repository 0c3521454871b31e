"""Evaluating a program's earning rules for one event: the heart of the engine.

:class:`Evaluator` is built once per program (it compiles per-item conditions into
one CEL call per event and works out which fields expressions read); ``evaluate`` is
a pure function of (event, member state, program state, coupon status): no clock, no
I/O, so the same event always gives the same decision and trace.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cel

from fidelite.engine.context import ContextFactory, fields_needed
from fidelite.engine.coupon import CouponStatus, check_coupon
from fidelite.engine.decision import CouponUse, Decision, Earning, Outcome, RuleTrace, Usage
from fidelite.engine.event import Event
from fidelite.engine.expiry import expires_at, pending_until
from fidelite.engine.member import MemberState, ProgramState
from fidelite.engine.period import period_key
from fidelite.engine.rounding import from_cel_number, to_points
from fidelite.program.definition import ProgramDefinition
from fidelite.program.expression import ITEM_VARIABLES, Expression, compile_expression
from fidelite.program.rule import Rounding, Rule


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    currency: str
    item_matches: Expression | None  # event.items.map(item, <per_item.when>)


class Evaluator:
    """Applies one program's rules to events. Thread-compatible: keeps no per-event state."""

    def __init__(self, program: ProgramDefinition) -> None:
        self.program = program
        ordered = sorted(enumerate(program.rules), key=lambda pair: (pair[1].priority, pair[0]))
        self._rules = [self._compile(rule) for _, rule in ordered]
        self._contexts: dict[str, ContextFactory] = {}
        self._tier_multipliers = (
            {t.id: t.earn_multiplier for t in program.tiers.levels} if program.tiers else {}
        )

    def _compile(self, rule: Rule) -> _CompiledRule:
        item_matches = None
        if rule.per_item is not None and rule.per_item.when is not None:
            source = f"event.items.map(item, ({rule.per_item.when.source}))"
            item_matches = compile_expression(source, ITEM_VARIABLES)
        return _CompiledRule(rule, self.program.currency_of(rule.currency), item_matches)

    def context_factory(self, event_type: str) -> ContextFactory:
        """The context builder for one event type: only fields its rules read are built."""
        factory = self._contexts.get(event_type)
        if factory is None:
            expressions: list[Expression] = []
            for compiled in self._rules:
                if event_type in compiled.rule.on:
                    rule = compiled.rule
                    expressions += [e for e in (rule.when, rule.formula) if e]
                    expressions += [compiled.item_matches] if compiled.item_matches else []
            factory = ContextFactory(fields_needed(expressions), self.program.zone)
            self._contexts[event_type] = factory
        return factory

    def evaluate(
        self,
        event: Event,
        member: MemberState,
        state: ProgramState | None = None,
        coupon_status: CouponStatus = CouponStatus.not_found,
    ) -> Decision:
        """Decide what ``event`` earns ``member``; see :mod:`fidelite.program.rule`."""
        run = _Run(self, event, member, state or ProgramState(), coupon_status)
        return run.decide()


class _Run:
    """The evaluation of one event (private: holds the lazily built CEL context)."""

    def __init__(
        self,
        evaluator: Evaluator,
        event: Event,
        member: MemberState,
        state: ProgramState,
        coupon_status: CouponStatus,
    ) -> None:
        self.ev = evaluator
        self.program = evaluator.program
        self.event = event
        self.member = member
        self.state = state
        self._context: cel.Context | None = None
        self.coupon: CouponUse | None = None
        if event.coupon:
            self.coupon = check_coupon(self.program, event.coupon, coupon_status, member, event.at)
        self.trace: list[RuleTrace] = []
        self.usage: list[Usage] = []
        self.budget_spent: dict[str, int] = {}
        self.running: dict[str, int] = defaultdict(int)
        self.tier_base: dict[str, int] = defaultdict(int)

    @property
    def context(self) -> cel.Context:
        if self._context is None:
            factory = self.ev.context_factory(self.event.type)
            self._context = factory.build(self.event, self.member)
        return self._context

    def decide(self) -> Decision:
        stopped_by: str | None = None
        for compiled in self.ev._rules:
            rule = compiled.rule
            if self.event.type not in rule.on:
                self.trace.append(RuleTrace(rule.id, Outcome.event_type))
                continue
            if stopped_by is not None:
                self.trace.append(RuleTrace(rule.id, Outcome.stopped, note=f"by {stopped_by}"))
                continue
            if self._apply(compiled) and rule.stop:
                stopped_by = rule.id
        self._apply_tier_multiplier()
        return Decision(
            event_id=self.event.id,
            member=self.member.ref,
            at=self.event.at,
            earnings=self._earnings(),
            trace=self.trace,
            usage=self.usage,
            budget_spent=self.budget_spent,
            coupon=self.coupon,
        )

    def _apply(self, compiled: _CompiledRule) -> bool:
        """Evaluate one rule; True if it applied (gates passed and budget left)."""
        rule = compiled.rule
        gate = self._gate(rule)
        if gate is not None:
            self.trace.append(gate)
            return False
        try:
            raw = self._raw_points(compiled)
        except Exception as exc:  # a CEL runtime error in a formula or item condition
            self.trace.append(RuleTrace(rule.id, Outcome.condition_error, note=_short(exc)))
            return False
        points, outcome, note = raw, Outcome.matched, ""
        if rule.cap_per_event is not None and points > rule.cap_per_event:
            points, outcome = rule.cap_per_event, Outcome.cap_per_event
            note = f"{raw} capped at {rule.cap_per_event} per event"
        if rule.cap_per_member is not None:
            key = period_key(rule.cap_per_member.period, self.event.at, self.program.zone)
            used = self.member.rule_points.get((rule.id, key), 0)
            left = max(rule.cap_per_member.points - used, 0)
            if points > left:
                note = f"{points} capped at {left} left for {key}"
                points, outcome = left, Outcome.cap_per_member
        if rule.budget is not None:
            left = max(rule.budget - self.state.budget_used.get(rule.id, 0), 0)
            if left == 0:
                self.trace.append(
                    RuleTrace(rule.id, Outcome.rule_budget_exhausted, currency=compiled.currency)
                )
                return False
            if points > left:
                note = f"{points} trimmed to the {left} left in the budget"
                points = left
            self.budget_spent[rule.id] = points
        if points == 0 and outcome is Outcome.matched:
            outcome = Outcome.no_points
        if rule.cap_per_member is not None and points > 0:
            self.usage.append(Usage(rule.id, key, points))
        self.running[compiled.currency] += points
        if rule.tier_multiplier:
            self.tier_base[compiled.currency] += points
        self.trace.append(RuleTrace(rule.id, outcome, points, compiled.currency, note))
        return True

    def _gate(self, rule: Rule) -> RuleTrace | None:
        """The first reason the rule does not apply, or None if it does."""
        if rule.window is not None and not rule.window.contains(self.event.at):
            return RuleTrace(rule.id, Outcome.outside_window)
        if rule.segments and not self.member.segments.intersection(rule.segments):
            return RuleTrace(rule.id, Outcome.segment)
        if rule.coupon_campaign is not None:
            coupon = self.coupon
            if coupon is None or not coupon.accepted or coupon.campaign != rule.coupon_campaign:
                reason = "no coupon" if coupon is None else (coupon.reason or "other campaign")
                return RuleTrace(rule.id, Outcome.coupon, note=reason)
        if rule.when is not None:
            try:
                result = rule.when.evaluate(self.context)
            except Exception as exc:  # CEL runtime errors: missing key, bad types
                return RuleTrace(rule.id, Outcome.condition_error, note=_short(exc))
            if result is not True:
                note = "" if result is False else f"condition gave {result!r}, not a boolean"
                outcome = Outcome.condition_false if result is False else Outcome.condition_error
                return RuleTrace(rule.id, outcome, note=note)
        return None

    def _raw_points(self, compiled: _CompiledRule) -> int:
        rule = compiled.rule
        if rule.multiply is not None:
            base = Decimal(self.running[compiled.currency])
            return to_points(base * (rule.multiply - 1), rule.rounding)
        total = Decimal(rule.fixed)
        if rule.per_amount is not None:
            total += self.event.money / rule.per_amount.per * rule.per_amount.points
        if rule.per_item is not None:
            total += self._item_points(compiled)
        if rule.formula is not None:
            total += from_cel_number(rule.formula.evaluate(self.context))
        return max(to_points(total, rule.rounding), 0)

    def _item_points(self, compiled: _CompiledRule) -> Decimal:
        per_item = compiled.rule.per_item
        assert per_item is not None
        items = self.event.items
        matches: list[Any] = (
            compiled.item_matches.evaluate(self.context)
            if compiled.item_matches is not None
            else [True] * len(items)
        )
        total = Decimal(0)
        for item, match in zip(items, matches, strict=True):
            if match is True:
                total += per_item.points_per_unit * item.quantity
                total += item.total / per_item.per * per_item.points_per_amount
        return total

    def _apply_tier_multiplier(self) -> None:
        tier = self.member.tier
        multiplier = self.ev._tier_multipliers.get(tier or "", Decimal(1))
        if multiplier == 1:
            return
        for currency, base in sorted(self.tier_base.items()):
            bonus = to_points(Decimal(base) * (multiplier - 1), Rounding.floor)
            if bonus > 0:
                note = f"x{multiplier} on {base}"
                self.trace.append(RuleTrace(f"tier:{tier}", Outcome.matched, bonus, currency, note))
                self.running[currency] += bonus

    def _earnings(self) -> list[Earning]:
        program, event = self.program, self.event
        expiry = expires_at(program.expiry, event.at, program.zone)
        pending = pending_until(program.pending, event.type, event.at)
        return [
            Earning(currency, points, expiry, pending)
            for currency, points in sorted(self.running.items())
            if points > 0
        ]


def _short(exc: Exception) -> str:
    text = str(exc).split(". ")[0]
    return f"{type(exc).__name__}: {text}"[:200]
