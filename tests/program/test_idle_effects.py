"""Effects that can never give anything are errors at their line, with the fix: a
multiplier with no points before it to multiply (on all or some of its event types),
and an effect written as 0 (``fixed: 0``, ``points_per_unit: 0``, ``formula: '0'``).

Only what provably does nothing is refused: the engine is run on the refused programs
(built without the check) to show the multiplier never gives a point, and on the
accepted look-alikes to show it does."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.engine import Evaluator, Event, MemberState
from fidelite.program import ProgramError, load_program, parse_program
from fidelite.program.definition import ProgramDefinition
from fidelite.program.rule import PerItem, Rule

_register()
runner = CliRunner()

ROOT = Path(__file__).parents[2]
HEAD = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.1}
"""
TWO = HEAD + "  - {id: stars, name: Stars, value: 1}\n"
CURRENCY = {"id": "points", "name": "Points", "value": "0.1"}
ORDER = "no rule that runs before it (in ascending priority, then file order) gives"
LATER = "give it a greater priority than the rules whose points it should multiply"


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def test_check_rejects_a_multiplier_that_runs_first() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: double, on: [purchase], multiply: 2, priority: 5}\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, priority: 10}\n"
    )
    assert problems(text) == [
        f"p.yaml:6:44: rules[0].multiply: 'multiply' does nothing on purchase: {ORDER} points"
        f" on that event type; {LATER}, or remove the rule"
    ]
    # Same priority: file order decides, and the multiplier still comes first.
    same = text.replace("priority: 5", "priority: 10")
    assert problems(same)[0].startswith("p.yaml:6:44: rules[0].multiply: 'multiply' does")
    # After the rule it multiplies, by priority or (at equal priority) by file order.
    assert parse_program(text.replace("priority: 5", "priority: 11"))
    reordered = HEAD + (
        "rules:\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}}\n"
        "  - {id: double, on: [purchase], multiply: 2}\n"
    )
    assert parse_program(reordered)


def test_check_names_the_event_types_a_multiplier_has_nothing_to_multiply_on() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}}\n"
        "  - {id: welcome, on: [signup], fixed: 100, priority: 200}\n"
        "  - {id: double, on: [purchase, signup, review], multiply: 2}\n"
    )
    assert problems(text) == [
        f"p.yaml:8:22: rules[2].on: the multiplier does nothing on signup, review: {ORDER}"
        f" points on those event types; {LATER}, or remove them from 'on'"
    ]
    assert problems(text.replace(", signup, review]", ", review]")) == [
        f"p.yaml:8:22: rules[2].on: the multiplier does nothing on review: {ORDER}"
        f" points on that event type; {LATER}, or remove it from 'on'"
    ]
    # Every type without an earlier rule: the multiplier as a whole does nothing.
    none = text.replace("[purchase, signup, review]", "[signup, review]")
    assert problems(none) == [
        f"p.yaml:8:50: rules[2].multiply: 'multiply' does nothing on signup, review: {ORDER}"
        f" points on those event types; {LATER}, or remove the rule"
    ]


def test_check_rejects_a_multiplier_behind_stop_rules_only() -> None:
    # vip either gives points and stops evaluation before double, or gives none and
    # leaves double nothing to multiply; the condition does not matter.
    text = HEAD + (
        "rules:\n"
        "  - id: vip\n"
        "    on: [purchase]\n"
        "    formula: event.amount * 2.0\n"
        "    when: event.amount >= 50.0\n"
        "    stop: true\n"
        "  - {id: double, on: [purchase], multiply: 2}\n"
    )
    assert problems(text) == [
        f"p.yaml:11:44: rules[1].multiply: 'multiply' does nothing on purchase: {ORDER} points"
        " on that event type, other than stop rules (vip), which end evaluation before it"
        f" whenever they give points; {LATER}, or remove the rule"
    ]
    # A rule without stop between them: double multiplies its points when vip gives none.
    fed = text.replace(
        "  - {id: double", "  - {id: base, on: [purchase], fixed: 5}\n  - {id: double"
    )
    assert parse_program(fed)


def test_check_rejects_a_multiplier_of_a_currency_no_earlier_rule_gives() -> None:
    text = TWO + (
        "rules:\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}}\n"
        "  - {id: star, on: [purchase], fixed: 1, currency: stars, priority: 300}\n"
        "  - {id: double_stars, on: [purchase], multiply: 2, currency: stars}\n"
    )
    assert problems(text) == [
        f"p.yaml:9:50: rules[2].multiply: 'multiply' does nothing on purchase: {ORDER}"
        " 'stars' points on that event type (those before it give 'points' points: a"
        f" multiplier only multiplies points of its own currency); {LATER}, or remove the rule"
    ]
    # In the default currency, named or not, it multiplies base.
    assert parse_program(text.replace(", currency: stars}\n", ", currency: points}\n"))
    assert parse_program(text.replace(", currency: stars}\n", "}\n"))


def test_check_rejects_multipliers_with_only_multipliers_before_them() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: double, on: [purchase], multiply: 2, priority: 1}\n"
        "  - {id: triple, on: [purchase], multiply: 3, priority: 2}\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, priority: 3}\n"
    )
    assert [p.split(": ", 2)[1] for p in problems(text)] == [
        "rules[0].multiply",
        "rules[1].multiply",
    ]


def test_check_accepts_multipliers_it_cannot_prove_idle() -> None:
    # Whether these multiply anything depends on the events (conditions, windows,
    # segments, coupons, caps, budgets), or on a value the file gets wrong elsewhere.
    program = parse_program(
        TWO + "rules:\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, when: 'event.amount > 10.0'}\n"
        "  - id: spring\n"
        "    on: [signup]\n"
        "    fixed: 10\n"
        "    window: {start: 2026-03-01T00:00:00Z, end: 2026-04-01T00:00:00Z}\n"
        "    cap_per_member: {points: 10, period: ever}\n"
        "    budget: 1000\n"
        "  - {id: double, on: [purchase, signup], multiply: 2}\n"
        "  - {id: triple, on: [purchase], multiply: 3}\n"
        "  - {id: star, on: [purchase], fixed: 1, currency: stars, segments: [vip], stop: true}\n"
        "  - {id: extra, on: [purchase], fixed: 1, currency: stars, priority: 120}\n"
        "  - {id: more_stars, on: [purchase], multiply: 2, currency: stars, priority: 130}\n"
    )
    assert [rule.id for rule in program.rules][-1] == "more_stars"
    # A priority that does not parse may put the rule first; an unknown currency may be
    # a typo of the multiplier's: neither is reported on the multiplier.
    broken = HEAD + (
        "rules:\n"
        "  - {id: double, on: [purchase], multiply: 2, priority: 5}\n"
        "  - {id: base, on: [purchase], fixed: 1, priority: first}\n"
        "  - {id: stars, on: [purchase], fixed: 1, currency: starz}\n"
        "  - {id: triple, on: [purchase], multiply: 3, currency: starz, priority: 200}\n"
    )
    assert [p.split(": ", 2)[1] for p in problems(broken)] == [
        "rules[1].priority",
        "rules[2].currency",
        "rules[3].currency",
    ]


def _without_checks(head: str, rules: list[dict[str, object]]) -> ProgramDefinition:
    """A program with these rules (each valid alone), built without the program-wide
    checks: what the engine would do if the file were accepted."""
    program = parse_program(head)
    return program.model_copy(update={"rules": [Rule.model_validate(rule) for rule in rules]})


BASE = {"id": "base", "on": ["purchase"], "per_amount": {"points": 1}}
IDLE = {
    "multiplier first": [{"id": "x", "on": ["purchase"], "multiply": 2, "priority": 1}, BASE],
    "behind a stop rule": [
        {"id": "vip", "on": ["purchase"], "fixed": 5, "when": "event.amount >= 50.0", "stop": True},
        {"id": "x", "on": ["purchase"], "multiply": 2},
    ],
    "other currency": [BASE, {"id": "x", "on": ["purchase"], "multiply": 2, "currency": "stars"}],
    "other event type": [BASE, {"id": "x", "on": ["signup"], "multiply": 2}],
}


@pytest.mark.parametrize("case", sorted(IDLE))
def test_the_engine_never_multiplies_anything_with_a_refused_multiplier(case: str) -> None:
    with pytest.raises(ValueError, match="'multiply' does nothing on"):
        ProgramDefinition.model_validate(
            {
                "id": "p",
                "name": "P",
                "currencies": [CURRENCY, {"id": "stars", "name": "Stars", "value": "1"}],
                "rules": IDLE[case],
            }
        )
    engine = Evaluator(_without_checks(TWO, IDLE[case]))
    for number, amount in enumerate(["0.00", "0.50", "30.00", "49.99", "50.00", "120.00"]):
        for kind in ("purchase", "signup"):
            event = Event.model_validate(
                {
                    "id": f"e{number}{kind}",
                    "type": kind,
                    "member": "m1",
                    "at": "2026-11-23T10:00:00+01:00",
                    **({"amount": Decimal(amount)} if kind == "purchase" else {}),
                }
            )
            decision = engine.evaluate(event, MemberState(ref="m1"))
            assert [line.points for line in decision.trace if line.rule == "x"] == [0]


def test_the_engine_multiplies_with_a_stop_rule_and_a_rule_without_stop_before() -> None:
    rules = [
        {"id": "vip", "on": ["purchase"], "fixed": 5, "when": "event.amount >= 50.0", "stop": True},
        BASE,
        {"id": "x", "on": ["purchase"], "multiply": 2},
    ]
    engine = Evaluator(_without_checks(HEAD, rules))
    event = Event.model_validate(
        {
            "id": "e",
            "type": "purchase",
            "member": "m1",
            "at": "2026-11-23T10:00:00+01:00",
            "amount": Decimal("30.00"),
        }
    )
    decision = engine.evaluate(event, MemberState(ref="m1"))
    assert [line.points for line in decision.trace if line.rule == "x"] == [30]


def test_check_rejects_an_effect_written_as_zero_next_to_others() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: a, on: [purchase], per_amount: {points: 1}, fixed: 0}\n"
        "  - {id: b, on: [purchase], per_item: {points_per_unit: 0, points_per_amount: 1}}\n"
        "  - {id: c, on: [purchase], per_item: {points_per_unit: 2, points_per_amount: 0.0}}\n"
        "  - {id: d, on: [purchase], fixed: 5, formula: '0'}\n"
        "  - {id: e, on: [purchase], multiply: 2, fixed: 0}\n"
    )
    assert problems(text) == [
        "p.yaml:6:61: rules[0].fixed: 'fixed' does nothing at 0: it adds no points to the"
        " rule's per_amount; remove it",
        "p.yaml:7:57: rules[1].per_item.points_per_unit: 'points_per_unit' does nothing at 0:"
        " the lines' points come from points_per_amount alone; remove it",
        "p.yaml:8:79: rules[2].per_item.points_per_amount: 'points_per_amount' does nothing"
        " at 0: the lines' points come from points_per_unit alone; remove it",
        "p.yaml:9:48: rules[3].formula: 'formula' does nothing at 0: it adds no points to the"
        " rule's fixed; remove it",
        "p.yaml:10:49: rules[4].fixed: 'fixed' does nothing at 0: it adds no points to the"
        " rule's multiply; remove it",
    ]


ONLY_ZERO = (
    "does nothing at 0, and it is the rule's only effect: a rule that gives no points"
    " does nothing (with stop: true it does not stop the rules after it either: stop ends"
    " evaluation only after a rule that gave points); give it an effect (per_amount,"
    " per_item, fixed above 0, formula or multiply), or remove the rule"
)


def test_check_rejects_a_rule_whose_only_effect_is_zero_even_with_stop() -> None:
    # A stop rule that gives nothing does not stop (see tests/engine/test_rules.py), so
    # 'fixed: 0, stop: true' cannot block the rules after it: it does nothing at all.
    text = HEAD + (
        "rules:\n"
        "  - {id: block, on: [purchase], fixed: 0, stop: true, priority: 1}\n"
        "  - {id: none, on: [purchase], formula: '0.0'}\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}}\n"
    )
    assert problems(text) == [
        f"p.yaml:6:40: rules[0].fixed: 'fixed' {ONLY_ZERO}",
        f"p.yaml:7:41: rules[1].formula: 'formula' {ONLY_ZERO}",
    ]
    # Without any effect written, the message is unchanged.
    assert problems(HEAD + "rules:\n  - {id: a, on: [purchase]}\n") == [
        "p.yaml:6:5: rules[0]: a rule needs an effect:"
        " per_amount, per_item, fixed, formula or multiply"
    ]
    # A formula that may give 0 is an effect: only the number 0 is refused.
    assert parse_program(HEAD + "rules:\n  - {id: a, on: [purchase], formula: '0.0 + 1.0'}\n")


def test_models_built_in_code_refuse_zero_effects() -> None:
    with pytest.raises(ValueError, match="'fixed' does nothing at 0, and it is the rule's only"):
        Rule.model_validate({"id": "a", "on": ["purchase"], "fixed": 0, "stop": True})
    with pytest.raises(ValueError, match="'fixed' does nothing at 0: it adds no points"):
        Rule.model_validate({"id": "a", "on": ["purchase"], "fixed": 0, "multiply": 2})
    with pytest.raises(ValueError, match="'points_per_unit' does nothing at 0"):
        PerItem.model_validate({"points_per_unit": 0, "points_per_amount": 1})
    # Defaults are no settings: a rule built in code with other effects has fixed == 0.
    rule = Rule.model_validate({"id": "a", "on": ["purchase"], "per_amount": {"points": 1}})
    assert rule.fixed == 0


def test_check_reports_an_idle_multiplier_as_json_and_exits_1(tmp_path: Path) -> None:
    file = tmp_path / "program.yaml"
    file.write_text(
        HEAD + "rules:\n"
        "  - {id: double, on: [purchase], multiply: 2}\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["program", "check", str(file), "--format", "json"])
    assert result.exit_code == 1
    found = json.loads(result.stdout)["error"]["problems"]
    assert [(p["line"], p["column"], p["field"]) for p in found] == [(6, 44, "rules[0].multiply")]
    assert found[0]["message"].startswith("'multiply' does nothing on purchase: no rule")


@pytest.mark.parametrize("path", ["src/fidelite/program/example.yaml", "bench/cafe_14_rules.yaml"])
def test_shipped_programs_pass_the_checks(path: str) -> None:
    assert load_program(ROOT / path).rules
    result = runner.invoke(app, ["program", "check", str(ROOT / path)])
    assert result.exit_code == 0, result.output
