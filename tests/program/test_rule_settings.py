"""A rule setting that the rule's other settings (or the program's tiers) make do
nothing is an error at its line that says so and how to fix it, not silently ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.program import ProgramError, parse_program
from fidelite.program.definition import ProgramDefinition
from fidelite.program.rule import PerItem, Rule, Window

_register()
runner = CliRunner()

HEAD = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.1}
"""
CURRENCY = {"id": "points", "name": "Points", "value": "0.1"}


def tiers(gold_multiplier: str) -> str:
    return (
        "tiers:\n  levels:\n"
        "    - {id: base, name: Base, threshold: 0}\n"
        f"    - {{id: gold, name: Gold, threshold: 100, earn_multiplier: {gold_multiplier}}}\n"
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def test_check_rejects_per_without_points_per_amount() -> None:
    # 5 points per unit: 'per: 10' looked like "per 10 EUR" and changed nothing.
    text = HEAD + "rules:\n  - {id: a, on: [purchase], per_item: {points_per_unit: 5, per: 10}}\n"
    assert problems(text) == [
        "p.yaml:6:65: rules[0].per_item.per: 'per' does nothing without points_per_amount"
        " (it is the money amount each points_per_amount is given for); remove it, or set"
        " points_per_amount"
    ]
    # A written 0 is no points_per_amount either (and does nothing itself).
    zero = text.replace("points_per_unit: 5,", "points_per_unit: 5, points_per_amount: 0,")
    found = problems(zero)
    assert found[0].startswith("p.yaml:6:79: rules[0].per_item.points_per_amount: ")
    assert found[1].startswith("p.yaml:6:87: rules[0].per_item.per: 'per' does nothing")
    assert len(found) == 2


def test_check_rejects_rounding_of_points_that_are_always_whole() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: a, on: [purchase], fixed: 50, rounding: ceil}\n"
        "  - {id: b, on: [purchase], per_item: {points_per_unit: 5}, fixed: 1, rounding: floor}\n"
        "  - {id: c, on: [purchase], multiply: 2, rounding: half_up}\n"
    )
    whole = "'rounding' does nothing on this rule: its points are always whole"
    assert problems(text) == [
        f"p.yaml:6:50: rules[0].rounding: {whole} (fixed: 50); remove it",
        f"p.yaml:7:81: rules[1].rounding: {whole} (fixed: 1, points_per_unit: 5 per unit"
        " bought); remove it",
        f"p.yaml:8:52: rules[2].rounding: {whole} (multiply: 2 on the whole points of the"
        " rules before it); remove it",
    ]


def test_check_rejects_tier_multiplier_where_no_tier_multiplies() -> None:
    rules = (
        "rules:\n"
        "  - {id: a, on: [purchase], fixed: 1, tier_multiplier: false}\n"
        "  - {id: b, on: [purchase], fixed: 1, tier_multiplier: true}\n"
    )
    assert problems(HEAD + rules) == [
        f"p.yaml:{line}:{column}: rules[{i}].tier_multiplier: 'tier_multiplier' does nothing"
        " in a program without tiers; remove it, or add a 'tiers:' section"
        for i, (line, column) in enumerate([(6, 56), (7, 56)])
    ]
    flat = HEAD + rules + tiers("1.0")
    assert problems(flat) == [
        f"p.yaml:{line}:56: rules[{i}].tier_multiplier: 'tier_multiplier' does nothing while"
        " no tier has an earn_multiplier above 1 (tiers add no points); remove it, or set a"
        " tier's earn_multiplier"
        for i, line in enumerate([6, 7])
    ]


def test_check_rejects_caps_a_smaller_bound_keeps_from_trimming() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: a, on: [purchase], fixed: 50, cap_per_event: 50}\n"
        "  - id: b\n"
        "    on: [purchase]\n"
        "    per_amount: {points: 1}\n"
        "    cap_per_event: 100\n"
        "    cap_per_member: {points: 60, period: week}\n"
        "  - id: c\n"
        "    on: [purchase]\n"
        "    formula: event.amount * 2.0\n"
        "    cap_per_event: 500\n"
        "    cap_per_member: {points: 600, period: ever}\n"
        "    budget: 500\n"
    )
    assert problems(text) == [
        "p.yaml:6:55: rules[0].cap_per_event: 'cap_per_event' does nothing at 50: the rule"
        " always gives fixed: 50 points, never more in one event; remove it",
        "p.yaml:10:20: rules[1].cap_per_event: 'cap_per_event' does nothing at 100:"
        " cap_per_member gives at most 60 points a week, never more in one event; remove it",
        "p.yaml:15:20: rules[2].cap_per_event: 'cap_per_event' does nothing at 500: its"
        " budget gives at most 500 points in all, never more in one event; remove it",
        "p.yaml:16:21: rules[2].cap_per_member: 'cap_per_member' does nothing with budget:"
        " 500: the rule gives at most 500 points in all, no more than cap_per_member.points"
        " (600) to one member; remove it, or lower its points below the budget",
    ]


def test_check_rejects_a_window_without_bounds() -> None:
    text = HEAD + (
        "rules:\n  - {id: a, on: [purchase], fixed: 1, window: {}}\n"
        "coupons:\n  - {id: gift, name: Gift, prefix: GIFT, window: {start: null}}\n"
    )
    empty = "'window' does nothing without start or end; remove it, or set start and/or end"
    assert problems(text) == [
        f"p.yaml:6:47: rules[0].window: {empty}",
        f"p.yaml:8:50: coupons[0].window: {empty}",
    ]


def test_check_reports_every_setting_that_does_nothing_and_writes_nothing(
    tmp_path: Path,
) -> None:
    file = tmp_path / "program.yaml"
    rule = "{id: a, on: [purchase], fixed: 50, rounding: ceil, tier_multiplier: false}"
    text = HEAD + f"rules:\n  - {rule}\n"
    file.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["program", "check", str(file), "--format", "json"])
    assert result.exit_code == 1
    found = json.loads(result.stdout)["error"]["problems"]
    assert [(p["line"], p["column"], p["field"]) for p in found] == [
        (6, 50, "rules[0].rounding"),
        (6, 73, "rules[0].tier_multiplier"),
    ]
    whole = "its points are always whole (fixed: 50); remove it"
    assert found[0]["message"] == f"'rounding' does nothing on this rule: {whole}"
    assert file.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["program.yaml"]


def test_load_accepts_settings_that_apply() -> None:
    program = parse_program(
        HEAD + "rules:\n"
        "  - {id: a, on: [purchase], per_item: {points_per_amount: 2, per: 10}, rounding: ceil}\n"
        "  - {id: b, on: [purchase], per_item: {points_per_unit: 0.5}, rounding: half_up}\n"
        "  - {id: c, on: [purchase], per_amount: {points: 1}, fixed: 5, rounding: ceil}\n"
        "  - {id: d, on: [purchase], formula: '10', rounding: floor, cap_per_event: 20}\n"
        "  - {id: e, on: [purchase], multiply: 1.5, rounding: half_even, cap_per_event: 40}\n"
        "  - {id: f, on: [purchase], fixed: 50, cap_per_event: 40, tier_multiplier: false}\n"
        "  - id: g\n"
        "    on: [purchase]\n"
        "    per_amount: {points: 1}\n"
        "    cap_per_event: 50\n"
        "    cap_per_member: {points: 100, period: month}\n"
        "    budget: 1000\n"
        "    window: {end: 2027-01-01T00:00:00+01:00}\n"
        "  - {id: h, on: [purchase], fixed: 50, cap_per_member: {points: 50, period: day}}\n"
        + tiers("1.5")
    )
    assert [rule.id for rule in program.rules] == ["a", "b", "c", "d", "e", "f", "g", "h"]
    assert program.rules[5].tier_multiplier is False
    # Defaults are no settings: a fixed rule without tiers is floor-rounded, multiplied.
    plain = parse_program(HEAD + "rules:\n  - {id: a, on: [purchase], fixed: 1}\n")
    assert plain.rules[0].rounding == "floor" and plain.rules[0].tier_multiplier is True


def test_models_built_in_code_obey_the_same_checks() -> None:
    with pytest.raises(ValueError, match="'per' does nothing without points_per_amount"):
        PerItem.model_validate({"points_per_unit": 5, "per": 10})
    with pytest.raises(ValueError, match="'rounding' does nothing on this rule"):
        Rule.model_validate({"id": "a", "on": ["purchase"], "fixed": 5, "rounding": "ceil"})
    with pytest.raises(ValueError, match="'cap_per_event' does nothing at 5"):
        Rule.model_validate({"id": "a", "on": ["purchase"], "fixed": 5, "cap_per_event": 5})
    with pytest.raises(ValueError, match="'window' does nothing without start or end"):
        Window()
    rule = {"id": "a", "on": ["purchase"], "fixed": 1, "tier_multiplier": False}
    with pytest.raises(ValueError, match="'tier_multiplier' does nothing in a program without"):
        ProgramDefinition.model_validate(
            {"id": "p", "name": "P", "currencies": [CURRENCY], "rules": [rule]}
        )
    del rule["tier_multiplier"]
    program = ProgramDefinition.model_validate(
        {"id": "p", "name": "P", "currencies": [CURRENCY], "rules": [rule]}
    )
    assert program.rules[0].tier_multiplier is True
