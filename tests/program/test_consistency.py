"""Every problem of a file in one run, each at the field to fix, whatever else is wrong."""

from __future__ import annotations

import pytest

from fidelite.program import ProgramError, parse_program
from fidelite.program.definition import ProgramDefinition
from fidelite.program.policy import ExpiryPolicy, PendingPolicy
from fidelite.program.tier import Tier, TierPolicy

HEAD = """\
id: shop
name: Shop
currencies:
  - id: points
    name: Points
    value: 0.1
"""
LEVEL = {"id": "base", "name": "Base", "threshold": 0}
CURRENCY = {"id": "points", "name": "Points", "value": "0.1"}


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def test_check_reports_schema_and_cross_section_problems_together() -> None:
    # A schema error (fixed: -1) used to hide every cross-section problem until fixed.
    text = HEAD + (
        "rules:\n"
        "  - id: a\n"
        "    on: [purchase]\n"
        "    fixed: -1\n"
        "  - id: a\n"
        "    on: [purchase]\n"
        "    fixed: 1\n"
        "    currency: stars\n"
        "tiers:\n"
        "  levels:\n"
        "    - {id: base, name: Base, threshold: 0}\n"
        "    - {id: gold, threshold: 0}\n"
        "rewards:\n"
        "  - {id: off, name: Off, kind: discount_percent, cost: 10, value: 120}\n"
        "expiry: {mode: inactivity, months: 12, rounding: end_of_month}\n"
        "pending: {days: 14, event_types: [purchse]}\n"
    )
    assert problems(text) == [
        "p.yaml:10:12: rules[0].fixed: Input should be greater than or equal to 0",
        "p.yaml:11:9: rules[1].id: duplicate id 'a'",
        "p.yaml:14:15: rules[1].currency: unknown currency 'stars' (known: points)",
        "p.yaml:18:7: tiers.levels[1].name: Field required",
        "p.yaml:18:29: tiers.levels[1].threshold:"
        " tier 'gold' must have a higher threshold than 'base' (0)",
        "p.yaml:20:67: rewards[0].value: a percent discount is at most 100",
        "p.yaml:21:50: expiry.rounding: 'rounding' only applies to mode after_earning",
        "p.yaml:22:35: pending.event_types[0]: no rule earns on event type 'purchse',"
        " so none of its points can be pending (rules earn on: purchase);"
        " did you mean 'purchase'?",
    ]


def test_check_points_model_level_problems_at_their_field() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: a, on: [purchase], fixed: 1, multiply: 2}\n"
        "  - id: b\n"
        "    on: [purchase]\n"
        "    fixed: 1\n"
        "    window: {start: 2027-01-02T00:00:00+01:00, end: 2027-01-01T00:00:00+01:00}\n"
        "tiers:\n"
        "  levels:\n"
        "    - {id: base, name: Base, threshold: 10}\n"
        "    - {id: base, name: Gold, threshold: 20}\n"
        "rewards:\n"
        "  - {id: off, name: Off, kind: discount_amount, cost: 10}\n"
        "  - {id: bag, name: Bag, kind: free_product, cost: 10}\n"
        "expiry: {mode: after_earning}\n"
    )
    assert problems(text) == [
        "p.yaml:8:49: rules[0].multiply:"
        " a multiplier rule ('multiply') cannot also give points directly",
        "p.yaml:12:53: rules[1].window.end: end must be after start",
        "p.yaml:15:41: tiers.levels[0].threshold:"
        " the first tier is the base level: its threshold must be 0",
        "p.yaml:16:12: tiers.levels[1].id: duplicate tier id 'base'",
        "p.yaml:18:5: rewards[0].value: a discount_amount reward needs 'value'",
        "p.yaml:19:5: rewards[1].sku: a free_product reward needs 'sku'",
        "p.yaml:20:9: expiry.months: 'months' is required when mode is after_earning",
    ]


NEVER_EXPIRE = "does nothing without a mode: points never expire (mode: never is the default);"
EXPIRE_MODES = " add mode: after_earning or mode: inactivity"


def test_check_rejects_expiry_settings_without_a_mode() -> None:
    # Points used to never expire, silently: expires_at stayed null.
    text = HEAD + (
        "rules:\n  - {id: a, on: [purchase], fixed: 1}\n"
        "expiry:\n"
        "  months: 12\n"
        "  rounding: end_of_month\n"
        "  warn_days: 30\n"
    )
    assert problems(text) == [
        f"p.yaml:10:11: expiry.months: 'months' {NEVER_EXPIRE}{EXPIRE_MODES}",
        f"p.yaml:11:13: expiry.rounding: 'rounding' {NEVER_EXPIRE}{EXPIRE_MODES}",
        f"p.yaml:12:14: expiry.warn_days: 'warn_days' {NEVER_EXPIRE}{EXPIRE_MODES}",
    ]


def test_check_rejects_expiry_settings_with_mode_never() -> None:
    text = HEAD + "expiry: {mode: never, months: 12}\n"
    assert problems(text) == [
        "p.yaml:7:31: expiry.months: 'months' does nothing with mode: never (points never"
        " expire); remove it, or set mode: after_earning or mode: inactivity"
    ]


def test_check_rejects_settings_that_do_nothing_in_other_policies() -> None:
    text = HEAD + (
        "rules:\n  - {id: a, on: [purchase, review], fixed: 1}\n"
        "tiers:\n"
        "  window: calendar_year\n"
        "  window_months: 6\n"
        "  requalify_months: 6\n"
        "  levels: [{id: base, name: Base, threshold: 0}]\n"
        "pending: {event_types: [review]}\n"
        "refunds: {shortfall: debt, reevaluate_tier: false}\n"
    )
    calendar = (
        "does nothing with window: calendar_year (the window is the calendar year,"
        " re-qualified every 1 January); remove it, or set window: rolling"
    )
    assert problems(text) == [
        f"p.yaml:11:18: tiers.window_months: 'window_months' {calendar}",
        f"p.yaml:12:21: tiers.requalify_months: 'requalify_months' {calendar}",
        "p.yaml:14:24: pending.event_types: 'event_types' does nothing while days is 0:"
        " points are available at once; set days to the return window (e.g. days: 14)",
    ]
    no_tiers = HEAD + "rules: []\nrefunds: {shortfall: debt, reevaluate_tier: false}\n"
    assert problems(no_tiers) == [
        "p.yaml:8:45: refunds.reevaluate_tier: 'reevaluate_tier' does nothing in a program"
        " without tiers; remove it, or add a 'tiers:' section"
    ]


def test_load_accepts_policy_settings_that_apply() -> None:
    program = parse_program(
        HEAD + "rules:\n  - {id: a, on: [purchase], fixed: 1}\n"
        "tiers: {window: rolling, window_months: 6, levels: [{id: b, name: B, threshold: 0}]}\n"
        "expiry: {mode: inactivity, months: 12, warn_days: 10}\n"
        "pending: {days: 14, event_types: [purchase]}\n"
        "refunds: {reevaluate_tier: false}\n"
    )
    assert program.tiers is not None and program.tiers.window_months == 6
    assert (program.expiry.months, program.expiry.warn_days) == (12, 10)
    assert program.pending.event_types == ["purchase"]
    assert program.refunds.reevaluate_tier is False
    calendar = parse_program(
        HEAD + "tiers: {window: calendar_year, levels: [{id: b, name: B, threshold: 0}]}\n"
        "expiry: {mode: never}\npending: {days: 0}\n"
    )
    assert calendar.expiry.mode == "never" and calendar.pending.days == 0


def test_check_rejects_rule_on_refund() -> None:
    text = HEAD + "rules:\n  - {id: a, on: [purchase, refund], fixed: 1}\n"
    assert problems(text) == [
        "p.yaml:8:28: rules[0].on[1]: a refund is not evaluated by rules: it reverses,"
        " in proportion to the amount refunded, what its purchase earned (see 'refunds:')"
    ]


def test_check_rejects_pending_types_no_rule_earns_on() -> None:
    text = HEAD + (
        "rules:\n  - {id: a, on: [purchase], fixed: 1}\n"
        "pending: {days: 14, event_types: [purchase, refund, signup]}\n"
    )
    assert problems(text) == [
        "p.yaml:9:45: pending.event_types[1]: a refund earns nothing"
        " (it reverses its purchase), so nothing is pending",
        "p.yaml:9:53: pending.event_types[2]: no rule earns on event type 'signup',"
        " so none of its points can be pending (rules earn on: purchase)",
    ]


def test_load_accepts_default_pending_types_without_purchase_rules() -> None:
    program = parse_program(
        HEAD + "rules:\n  - {id: a, on: [signup], fixed: 1}\npending: {days: 14}\n"
    )
    assert program.pending.event_types == ["purchase"]
    assert program.pending.days == 14


def test_check_keeps_a_schema_error_alone_at_its_field() -> None:
    # 'Stars' is no identifier: saying it is also an unknown currency would be noise.
    text = HEAD + "rules:\n  - {id: a, on: [purchase], fixed: 1, currency: Stars}\n"
    assert problems(text) == [
        "p.yaml:8:49: rules[0].currency: String should match pattern '^[a-z][a-z0-9_]*$'"
    ]


def test_check_reports_mapping_used_as_key_as_invalid_yaml() -> None:
    assert problems(HEAD + "rules: [{{on: [a]}: 1}]\n") == [
        "p.yaml:1:1: invalid YAML: a mapping or a list used as a key"
    ]


def test_models_built_in_code_obey_the_same_checks() -> None:
    with pytest.raises(ValueError, match="'months' is required when mode is inactivity"):
        ExpiryPolicy.model_validate({"mode": "inactivity"})
    with pytest.raises(ValueError, match="'months' does nothing without a mode"):
        ExpiryPolicy.model_validate({"months": 12})
    with pytest.raises(ValueError, match="'event_types' does nothing while days is 0"):
        PendingPolicy.model_validate({"event_types": ["purchase"]})
    with pytest.raises(ValueError, match="'window_months' does nothing with window: calendar"):
        TierPolicy.model_validate(
            {"window": "calendar_year", "window_months": 6, "levels": [LEVEL]}
        )
    with pytest.raises(ValueError, match="'reevaluate_tier' does nothing in a program without"):
        ProgramDefinition.model_validate(
            {"id": "p", "name": "P", "currencies": [CURRENCY], "refunds": {"shortfall": "debt",
             "reevaluate_tier": True}}
        )  # fmt: skip
    assert ExpiryPolicy().mode == "never" and PendingPolicy(days=14).event_types == ["purchase"]
    with pytest.raises(ValueError, match="must have a higher threshold than 'base'"):
        TierPolicy(
            levels=[
                Tier(id="base", name="Base", threshold=0),
                Tier(id="gold", name="Gold", threshold=0),
            ]
        )


TIERED = HEAD + (
    "tiers:\n"
    "  levels:\n"
    "    - {id: bronze, name: Bronze, threshold: 0}\n"
    "    - {id: gold, name: Gold, threshold: 500}\n"
    "rules:\n"
    "  - id: r\n"
    "    on: [purchase]\n"
    "    fixed: 1\n"
)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            'member.tier == "gld"',
            'member.tier == "gld" is never true: "gld" is no tier of this program (known:'
            ' bronze, gold); a member without a tier has ""; did you mean "gold"?',
        ),
        (
            'event.hour < 11 && "Gold" == member.tier',
            '"Gold" == member.tier is never true (at column 20): "Gold" is no tier of this'
            ' program (known: bronze, gold); a member without a tier has ""; did you mean'
            ' "gold"?',
        ),
        (
            'member.tier != "silver"',
            'member.tier != "silver" is always true: "silver" is no tier of this program'
            ' (known: bronze, gold); a member without a tier has ""',
        ),
        (
            'member.tier in ["gold", "platinum"]',
            'member.tier in ["gold", "platinum"]: the entry "platinum" is no tier of this'
            " program (known: bronze, gold)",
        ),
    ],
)
def test_check_rejects_member_tier_compared_with_no_tier(when: str, message: str) -> None:
    # Valid CEL of the right types: it used to load, and the rule never gave anything.
    text = TIERED + f"    when: '{when}'\n"
    assert problems(text) == [f"p.yaml:15:11: rules[0].when: {message}"]


@pytest.mark.parametrize(
    "when",
    [
        'member.tier == "gold"',
        'member.tier == "" || member.tier in ["bronze", "gold"]',
        "member.tier == event.attributes.tier",  # known only at run time
        'member.tier.startsWith("g")',
    ],
)
def test_check_accepts_member_tier_compared_with_its_tiers(when: str) -> None:
    program = parse_program(TIERED + f"    when: '{when}'\n")
    assert program.rules[0].when is not None and program.rules[0].when.source == when


def test_check_rejects_tier_names_in_per_item_conditions_too() -> None:
    text = TIERED.replace(
        "    fixed: 1\n",
        "    per_item: {when: 'member.tier == \"vip\"', points_per_unit: 1}\n",
    )
    assert problems(text) == [
        'p.yaml:14:22: rules[0].per_item.when: member.tier == "vip" is never true: "vip" is'
        ' no tier of this program (known: bronze, gold); a member without a tier has ""'
    ]
