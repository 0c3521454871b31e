"""Checks that span fields or sections of a program file, on the file as written.

Pydantic stops at the first broken level: a model whose field fails never runs its
model validator, and the program's cross-section checks (a rule naming a currency, a
reward naming a tier, unique ids) would wait until every section is valid. A business
fixing a file then meets its mistakes one run at a time. These checks run instead on
the YAML document as parsed (plain dicts and lists), whatever else is wrong, and each
problem names the exact field: ``rules[3].currency``, ``tiers.levels[1].threshold``.

The same functions back the models' validators (see :mod:`fidelite.program.model`), so
a program built in code obeys the same rules as one loaded from a file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cel

from fidelite.program.coupon_literals import coupon_literal_problems
from fidelite.program.expression import (
    ITEM_VARIABLES,
    RULE_VARIABLES,
    ExpressionError,
    compile_expression,
)
from fidelite.program.holds import hold_problems
from fidelite.program.model import Location, Problems, as_decimal, mappings, unused_fields
from fidelite.program.policy import expiry_problems, pending_problems, refund_problems
from fidelite.program.probe import Result, type_problems
from fidelite.program.reward import reward_problems
from fidelite.program.rule import (
    PURCHASE,
    REFUND,
    effect_problems,
    gives_points_directly,
    offset_problems,
    per_item_problems,
    rule_setting_problems,
    window_problems,
)
from fidelite.program.tier import ladder_problems, tier_window_problems
from fidelite.program.tier_literals import tier_literal_problems

Check = Callable[[Mapping[str, Any]], Problems]


def document_problems(document: Mapping[str, Any]) -> list[tuple[Location, str]]:
    """Every model-level and cross-section problem of a program document, in file order
    of sections (the loader sorts all problems by line)."""
    return list(_model_problems(document)) + list(cross_section_problems(document))


def _model_problems(document: Mapping[str, Any]) -> Problems:
    for i, rule in mappings(document.get("rules")):
        yield from _at(("rules", i), effect_problems, rule)
        yield from _at(("rules", i), rule_setting_problems, rule)
        yield from _at(("rules", i, "window"), window_problems, rule.get("window"))
        yield from _at(("rules", i, "per_item"), per_item_problems, rule.get("per_item"))
    for i, campaign in mappings(document.get("coupons")):
        yield from _at(("coupons", i, "window"), window_problems, campaign.get("window"))
    for i, reward in mappings(document.get("rewards")):
        yield from _at(("rewards", i), reward_problems, reward)
    yield from _offset_problems(document)
    yield from _at(("tiers",), ladder_problems, document.get("tiers"))
    yield from _at(("tiers",), tier_window_problems, document.get("tiers"))
    yield from _at(("expiry",), expiry_problems, document.get("expiry"))
    yield from _at(("pending",), pending_problems, document.get("pending"))


def _offset_problems(document: Mapping[str, Any]) -> Problems:
    """Dates of windows and reward validity written with the program zone's other
    offset (:func:`fidelite.program.rule.offset_problems`); nothing if the zone is not
    known (its own problem says so)."""
    name = document.get("time_zone", "UTC")
    try:
        zone = ZoneInfo(name) if isinstance(name, str) else None
    except (ValueError, OSError, ZoneInfoNotFoundError):  # an unknown zone, told apart
        zone = None
    if zone is None:
        return
    for section, fields in _DATED:
        for i, entry in mappings(document.get(section)):
            window = entry.get("window")
            if section != "rewards" and isinstance(window, Mapping):
                for loc, message in offset_problems(window, fields, zone):
                    yield (section, i, "window", *loc), message
            elif section == "rewards":
                for loc, message in offset_problems(entry, fields, zone):
                    yield (section, i, *loc), message


_DATED = (
    ("rules", ("start", "end")),
    ("coupons", ("start", "end")),
    ("rewards", ("valid_from", "valid_until")),
)
"""The dates of a program file, per section: its entries' ``window`` bounds, or (for
rewards) the entries' own fields."""


def _at(prefix: Location, check: Check, section: object) -> Problems:
    if isinstance(section, Mapping):
        for loc, message in check(section):
            yield prefix + loc, message


def cross_section_problems(program: Mapping[str, Any]) -> Problems:
    """Unique ids and prefixes; references to currencies, campaigns and tiers that exist;
    pending event types that some rule earns on; a return window that ends before the
    points can expire (:mod:`fidelite.program.holds`); event types recorded without a rule
    (``events``) that none earns on and that are no purchase or refund; no tier setting
    in refunds or rules without tiers (or, in rules, without a tier that multiplies
    points); no rule comparing ``member.tier`` with a string that is no tier, nor
    ``event.coupon`` with a string that no recorded code is; no
    multiplier rule with nothing before it to multiply on an event type it
    handles.

    ``program`` is the program's fields, validated (dumped; the rules and policies with
    the fields set only) or as written.
    """
    rules = list(mappings(program.get("rules")))
    currencies = list(mappings(program.get("currencies")))
    rewards = list(mappings(program.get("rewards")))
    coupons = list(mappings(program.get("coupons")))
    tiers = program.get("tiers")
    levels = list(mappings(tiers.get("levels"))) if isinstance(tiers, Mapping) else []
    yield from _duplicates("currencies", currencies)
    yield from _duplicates("rules", rules)
    yield from _duplicates("rewards", rewards)
    yield from _duplicates("coupons", coupons)
    yield from _duplicates("coupons", coupons, field="prefix")
    currency_ids = _ids(currencies)
    campaign_ids = _ids(coupons)
    tier_ids = _ids(levels)
    no_tier_bonus = _tier_multiplier_unused(tiers)
    for i, rule in rules:
        yield from _reference(("rules", i, "currency"), rule, "currency", currency_ids)
        if no_tier_bonus is not None:
            for loc, message in unused_fields(rule, ("tier_multiplier",), no_tier_bonus):
                yield ("rules", i, *loc), message
        yield from _reference(
            ("rules", i, "coupon_campaign"), rule, "coupon_campaign", campaign_ids
        )
    for i, rule in rules:
        yield from _tier_literal_problems(("rules", i), rule, _tier_ids(tiers))
        yield from _coupon_literal_problems(("rules", i), rule)
    for i, reward in rewards:
        yield from _reference(("rewards", i, "currency"), reward, "currency", currency_ids)
        for j, tier in _strings(reward.get("tiers")):
            if tier not in tier_ids:
                yield ("rewards", i, "tiers", j), f"unknown tier {tier!r}{_known(tier_ids)}"
    yield from _multiplier_problems(rules, currency_ids, _default_currency(program))
    yield from _pending_problems(program.get("pending"), rules)
    yield from hold_problems(program)
    yield from _recorded_problems(program.get("events"), rules)
    refunds = program.get("refunds")
    if isinstance(refunds, Mapping):
        for loc, message in refund_problems(refunds, tiers):
            yield ("refunds", *loc), message


def _tier_multiplier_unused(tiers: object) -> str | None:
    """Why a rule's ``tier_multiplier`` does nothing in a program with these ``tiers``
    (none, or none whose ``earn_multiplier`` is above 1), or None if it may do something
    (or a level's multiplier does not parse)."""
    if tiers is None:
        return "in a program without tiers; remove it, or add a 'tiers:' section"
    if not isinstance(tiers, Mapping):
        return None
    levels = list(mappings(tiers.get("levels")))
    factors = [as_decimal(level.get("earn_multiplier", 1)) for _, level in levels]
    if not levels or any(factor is None or factor != 1 for factor in factors):
        return None
    return (
        "while no tier has an earn_multiplier above 1 (tiers add no points);"
        " remove it, or set a tier's earn_multiplier"
    )


def _multiplier_problems(
    rules: Sequence[tuple[int, Mapping[str, Any]]],
    currency_ids: list[str],
    default: str | None,
) -> Problems:
    """Each multiplier rule has, for each event type it handles, a rule before it whose
    points it could multiply.

    A multiplier (``multiply`` as the rule's only effect) gives (F - 1) x the points
    that the rules evaluated before it gave in its currency for the same event
    (:mod:`fidelite.engine.evaluator`): rules run in ascending ``priority``, then file
    order, and evaluation ends after a ``stop`` rule that gave points. So on an event
    type T it can only ever give points if some rule before it handles T, gives points
    in its currency by an effect of its own, and has no ``stop``: a stop rule that gives
    such points ends evaluation before the multiplier runs, one that gives none leaves
    nothing to multiply, and an earlier multiplier only multiplies what such a rule
    gave. A multiplier without one for any of its types does nothing at all (reported
    at ``multiply``); for some of its types, it does nothing on those (at ``on``).

    Only what provably never multiplies anything is reported: a rule before it counts
    whatever its ``when``, ``window``, ``segments``, ``coupon_campaign``, caps and budget
    (they may well leave it nothing to multiply, but whether they always do depends on
    the events). What does not parse counts as possibly feeding the multiplier: a rule
    whose ``priority`` is not a whole number counts as before it, one whose ``on`` is not
    a list of names as handling every type, a ``currency`` that is not a known one as
    the multiplier's, a ``stop`` other than ``true`` as no stop; a multiplier whose own
    priority or currency is not known is not checked.
    """
    several = len(currency_ids) > 1
    for m, multiplier in rules:
        if multiplier.get("multiply") is None or gives_points_directly(multiplier):
            continue
        position = _priority(multiplier)
        currency = _currency(multiplier, default)
        types = list(dict.fromkeys(t for _, t in _strings(multiplier.get("on")) if t != REFUND))
        if position is None or currency not in currency_ids or not types:
            continue
        before = [
            rule
            for r, rule in rules
            if r != m and gives_points_directly(rule) and _runs_before(rule, r, (position, m))
        ]
        idle: list[str] = []
        stoppers: list[str] = []
        elsewhere: list[str] = []
        for event_type in types:
            handling = [rule for rule in before if _may_handle(rule, event_type)]
            same = [rule for rule in handling if _may_be_in(rule, currency, currency_ids, default)]
            if any(rule.get("stop") is not True for rule in same):
                continue
            idle.append(event_type)
            stoppers += [rule_id for rule in same if isinstance(rule_id := rule.get("id"), str)]
            elsewhere += [
                str(_currency(rule, default))
                for rule in handling
                if not _may_be_in(rule, currency, currency_ids, default)
            ]
        if not idle:
            continue
        on = ", ".join(idle)
        them = "it" if len(idle) == 1 else "them"
        what = f"'{currency}' points" if several else "points"
        those = "that event type" if len(idle) == 1 else "those event types"
        why = (
            "no rule that runs before it (in ascending priority, then file order) gives"
            f" {what} on {those}"
        )
        if stoppers:
            why += (
                f", other than stop rules ({', '.join(dict.fromkeys(stoppers))}), which end"
                " evaluation before it whenever they give points"
            )
        if elsewhere:
            why += (
                f" (those before it give {', '.join(repr(c) for c in dict.fromkeys(elsewhere))}"
                " points: a multiplier only multiplies points of its own currency)"
            )
        later = "give it a greater priority than the rules whose points it should multiply"
        if len(idle) == len(types):
            message = f"'multiply' does nothing on {on}: {why}; {later}, or remove the rule"
            yield ("rules", m, "multiply"), message
        else:
            message = f"the multiplier does nothing on {on}: {why}; {later}, or remove {them}"
            yield ("rules", m, "on"), f"{message} from 'on'"


def _default_currency(program: Mapping[str, Any]) -> str | None:
    """The id of the program's first currency (rules without ``currency`` use it), or
    None if it is not known."""
    currencies = program.get("currencies")
    if isinstance(currencies, list) and currencies and isinstance(currencies[0], Mapping):
        first = currencies[0].get("id")
        return first if isinstance(first, str) else None
    return None


def _currency(rule: Mapping[str, Any], default: str | None) -> object:
    """The currency a rule gives points in, as written (None: not known)."""
    declared = rule.get("currency")
    return default if declared is None else declared


def _may_be_in(
    rule: Mapping[str, Any], currency: str, known: list[str], default: str | None
) -> bool:
    """Whether the rule may give points in ``currency`` (a name that is not a known
    currency may be a typo of it)."""
    own = _currency(rule, default)
    return own == currency or own not in known


def _priority(rule: Mapping[str, Any]) -> int | None:
    """The rule's priority (default 100), or None if it is not a whole number."""
    number = as_decimal(rule.get("priority", 100))
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _runs_before(rule: Mapping[str, Any], index: int, other: tuple[int, int]) -> bool:
    """Whether the rule at ``index`` may be evaluated before the one whose (priority,
    index) is ``other`` (a priority that is not known may be lower)."""
    priority = _priority(rule)
    return priority is None or (priority, index) < other


def _may_handle(rule: Mapping[str, Any], event_type: str) -> bool:
    """Whether the rule may handle ``event_type`` (an ``on`` that is not a list of
    names may)."""
    on = rule.get("on")
    if not isinstance(on, list) or not all(isinstance(t, str) for t in on):
        return True
    return event_type in on


def _pending_problems(pending: object, rules: Sequence[tuple[int, Mapping[str, Any]]]) -> Problems:
    """Each listed pending event type is one some rule earns on.

    A type no rule handles earns nothing, so listing it does nothing; most likely it is
    a typo (``purchse``) that silently turns off the return window of the real type.
    """
    if not isinstance(pending, Mapping):
        return
    handled = sorted({t for _, rule in rules for _, t in _strings(rule.get("on"))} - {REFUND})
    for j, event_type in _strings(pending.get("event_types")):
        loc: Location = ("pending", "event_types", j)
        if event_type == REFUND:
            yield loc, "a refund earns nothing (it reverses its purchase), so nothing is pending"
        elif event_type not in handled:
            yield loc, _unhandled(event_type, handled)


def _recorded_problems(
    recorded: object, rules: Sequence[tuple[int, Mapping[str, Any]]]
) -> Problems:
    """Each type of ``events`` (recorded without a rule) is listed once, is no purchase
    or refund (always handled) and is earned on by no rule (a rule handles it already).

    Listing a type there does nothing in those cases; say so rather than let a list
    that means nothing stand in the file."""
    earned = {t for _, rule in rules for _, t in _strings(rule.get("on"))}
    seen: set[str] = set()
    for j, event_type in _strings(recorded):
        loc: Location = ("events", j)
        if event_type in (PURCHASE, REFUND):
            yield loc, f"{event_type!r} is always handled; remove it from 'events'"
        elif event_type in earned:
            yield loc, f"a rule earns on {event_type!r} already; remove it from 'events'"
        elif event_type in seen:
            yield loc, f"duplicate event type {event_type!r}"
        seen.add(event_type)


def _unhandled(event_type: str, handled: list[str]) -> str:
    message = f"no rule earns on event type {event_type!r}, so none of its points can be pending"
    if handled:
        message += f" (rules earn on: {', '.join(handled)})"
    close = difflib.get_close_matches(event_type, handled, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message


def _duplicates(
    section: str, entries: Sequence[tuple[int, Mapping[str, Any]]], *, field: str = "id"
) -> Problems:
    seen: set[str] = set()
    for i, entry in entries:
        value = entry.get(field)
        if not isinstance(value, str):
            continue
        if value in seen:
            yield (section, i, field), f"duplicate {field} {value!r}"
        seen.add(value)


_EXPRESSIONS: tuple[tuple[Location, frozenset[str], Result], ...] = (
    (("when",), RULE_VARIABLES, Result.condition),
    (("formula",), RULE_VARIABLES, Result.formula),
    (("per_item", "when"), ITEM_VARIABLES, Result.condition),
)
"""The CEL expressions of a rule: where, the variables they may read, what they give."""


def _tier_literal_problems(
    loc: Location, rule: Mapping[str, Any], tier_ids: list[str] | None
) -> Problems:
    """``member.tier`` compared with a string that is no tier of the program (see
    :mod:`fidelite.program.tier_literals`); nothing if the ladder is not known."""
    if tier_ids is None:
        return
    for field, _, _ in _EXPRESSIONS:
        source = _value_at(rule, field)
        if isinstance(source, str) and _compiles(source):
            for _, message in tier_literal_problems(source, tier_ids):
                yield (*loc, *field), message


def _coupon_literal_problems(loc: Location, rule: Mapping[str, Any]) -> Problems:
    """A string compared with ``event.coupon`` that the recorded code never is (see
    :mod:`fidelite.program.coupon_literals`)."""
    for field, _, _ in _EXPRESSIONS:
        source = _value_at(rule, field)
        if isinstance(source, str) and _compiles(source):
            for _, message in coupon_literal_problems(source):
                yield (*loc, *field), message


def is_expression(loc: Location) -> bool:
    """Whether ``loc`` is the place of a rule's CEL expression (``rules[2].when``)."""
    return (
        len(loc) >= 3
        and loc[0] == "rules"
        and isinstance(loc[1], int)
        and any(tuple(loc[2:]) == field for field, _, _ in _EXPRESSIONS)
    )


def expression_problems(program: Mapping[str, Any], loc: Location) -> list[str] | None:
    """Every problem of the rule expression at ``loc`` (``("rules", 2, "when")``), in
    the order of the expression's source; None if ``loc`` holds no expression as text.

    The schema reports one problem per field, the first; a file check lists them all so
    that one pass fixes the expression: a compile error alone (nothing else can be
    judged) or an unknown variable or field then the tier and coupon literals, else the type
    problems (:func:`fidelite.program.probe.type_problems`) and the tier literals that
    are no tier. The first problem is the schema's.
    """
    rules, index = program.get("rules"), loc[1] if len(loc) > 1 else None
    if not is_expression(loc) or not isinstance(rules, list) or not isinstance(index, int):
        return None
    if not 0 <= index < len(rules):
        return None
    rule, field = rules[index], tuple(loc[2:])
    kind = next((entry for entry in _EXPRESSIONS if entry[0] == field), None)
    source = _value_at(rule, field) if isinstance(rule, Mapping) else None
    if kind is None or not isinstance(source, str) or not source.strip():
        return None
    tier_ids = _tier_ids(program.get("tiers"))
    tiers = tier_literal_problems(source, tier_ids) if tier_ids is not None else []
    tiers += coupon_literal_problems(source)
    try:
        expression = compile_expression(source, kind[1])
    except ExpressionError as exc:  # an unknown variable or field: the tiers are judged
        return [str(exc), *(m for _, m in sorted(tiers))] if _compiles(source) else [str(exc)]
    found = type_problems(expression, kind[2]) + tiers
    return [message for _, message in sorted(found, key=lambda problem: problem[0])]


def _value_at(rule: Mapping[str, Any], field: Location) -> object:
    value: object = rule
    for part in field:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _compiles(source: str) -> bool:
    """Whether ``source`` is CEL syntax (else it is reported as such, alone)."""
    try:
        cel.compile(source)
    except ValueError:
        return False
    return True


def _tier_ids(tiers: object) -> list[str] | None:
    """The tier ids of the program (none without tiers), or None if the ladder is not
    known: a level that is not a mapping with a text id may be any tier."""
    if tiers is None:
        return []
    if not isinstance(tiers, Mapping):
        return None
    levels = tiers.get("levels")
    if levels is None:
        return []
    if not isinstance(levels, list):
        return None
    ids = [level.get("id") if isinstance(level, Mapping) else None for level in levels]
    if not all(isinstance(tier, str) for tier in ids):
        return None
    return [tier for tier in ids if isinstance(tier, str)]


def _reference(loc: Location, entry: Mapping[str, Any], field: str, known: list[str]) -> Problems:
    value = entry.get(field)
    if isinstance(value, str) and value not in known:
        kind = field.replace("_", " ")
        yield loc, f"unknown {kind} {value!r}{_known(known)}"


def _known(names: list[str]) -> str:
    return f" (known: {', '.join(names)})" if names else " (none is defined)"


def _ids(entries: Sequence[tuple[int, Mapping[str, Any]]]) -> list[str]:
    ids = (entry.get("id") for _, entry in entries)
    return [value for value in ids if isinstance(value, str)]


def _strings(value: object) -> Iterator[tuple[int, str]]:
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, str):
                yield index, entry
