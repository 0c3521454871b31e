"""Every problem of a file in one run, each at the field to fix, whatever else is wrong."""

from __future__ import annotations

import pytest

from fidelite.program import ProgramError, parse_program
from fidelite.program.policy import ExpiryPolicy
from fidelite.program.tier import Tier, TierPolicy

HEAD = """\
id: shop
name: Shop
currencies:
  - id: points
    name: Points
    value: 0.1
"""


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
    with pytest.raises(ValueError, match="must have a higher threshold than 'base'"):
        TierPolicy(
            levels=[
                Tier(id="base", name="Base", threshold=0),
                Tier(id="gold", name="Gold", threshold=0),
            ]
        )
