"""Loading program files: valid files load, every problem names file, line and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fidelite.program import ProgramError, load_program, parse_program
from fidelite.program.policy import ExpiryMode, Shortfall
from fidelite.program.rule import Period

EXAMPLE = Path(__file__).parents[2] / "src" / "fidelite" / "program" / "example.yaml"

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


def test_load_example_reads_every_section() -> None:
    program = load_program(EXAMPLE)
    assert program.id == "cafe_club"
    assert [c.id for c in program.currencies] == ["points", "stars"]
    assert len(program.rules) == 22
    assert program.tiers is not None and [t.id for t in program.tiers.levels] == [
        "bronze",
        "silver",
        "gold",
    ]
    assert len(program.rewards) == 8
    assert [r.id for r in program.rewards if r.currency == "stars"] == ["free_croissant"]
    assert program.coupons[0].prefix == "VIPWELC"
    assert program.expiry.mode is ExpiryMode.after_earning
    assert program.pending.days == 14
    assert program.refunds.shortfall is Shortfall.debt
    big_basket = next(r for r in program.rules if r.id == "big_basket")
    assert big_basket.cap_per_member is not None
    assert big_basket.cap_per_member.period is Period.month


def test_load_keeps_money_exact() -> None:
    program = parse_program(HEAD)
    assert program.currencies[0].value == Decimal("0.1")
    assert str(program.currencies[0].value) == "0.1"


def test_load_reports_bad_expression_with_line_and_column() -> None:
    text = HEAD + "rules:\n  - id: r\n    on: [purchase]\n    fixed: 1\n    when: event.amount >\n"
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith("p.yaml:11:11: rules[0].when: invalid CEL expression at column 15")


def test_load_rejects_unknown_variable_in_expression() -> None:
    text = (
        HEAD + "rules:\n  - id: r\n    on: [purchase]\n    fixed: 1\n    when: basket.total > 1.0\n"
    )
    assert problems(text) == [
        "p.yaml:11:11: rules[0].when: unknown variable 'basket' (available here: event, member)"
    ]


def test_load_rejects_unknown_event_field() -> None:
    text = (
        HEAD + "rules:\n  - id: r\n    on: [purchase]\n    fixed: 1\n    when: event.total > 1.0\n"
    )
    (found,) = problems(text)
    assert found.startswith("p.yaml:11:11: rules[0].when: unknown field event.total")


def test_load_reports_every_problem_at_once() -> None:
    text = HEAD + (
        "rules:\n"
        "  - id: a\n"
        "    on: [purchase]\n"
        "    fixed: -1\n"
        "  - id: b\n"
        "    on: [purchase]\n"
        "    fixed: 1\n"
        "    colour: red\n"
    )
    assert problems(text) == [
        "p.yaml:10:12: rules[0].fixed: Input should be greater than or equal to 0",
        "p.yaml:14:13: rules[1].colour: Extra inputs are not permitted",
    ]


def test_load_rejects_unknown_currency_reference() -> None:
    text = HEAD + "rules:\n  - id: r\n    on: [purchase]\n    fixed: 1\n    currency: stars\n"
    assert problems(text) == [
        "p.yaml:11:15: rules[0].currency: unknown currency 'stars' (known: points)"
    ]


def test_load_rejects_duplicate_rule_ids() -> None:
    rule = "  - id: r\n    on: [purchase]\n    fixed: 1\n"
    assert problems(HEAD + "rules:\n" + rule + rule) == [
        "p.yaml:11:9: rules[1].id: duplicate id 'r'"
    ]


def test_load_reports_invalid_yaml_position() -> None:
    (found,) = problems(HEAD + "rules: [\n")
    assert found.startswith("p.yaml:8:1: invalid YAML")


def test_load_rejects_missing_field_at_parent_line() -> None:
    text = HEAD + "rules:\n  - id: r\n    fixed: 1\n"
    assert problems(text) == ["p.yaml:8:5: rules[0].on: Field required"]


def test_a_currency_without_its_value_is_refused_naming_the_field() -> None:
    """docs/program.md says ``value`` is required; the error names it at its line."""
    text = "id: shop\nname: Shop\ncurrencies:\n  - {id: points, name: Points}\n"
    assert problems(text) == ["p.yaml:4:5: currencies[0].value: Field required"]


def test_load_rejects_datetime_without_offset() -> None:
    text = HEAD + (
        "rules:\n  - id: r\n    on: [purchase]\n    fixed: 1\n"
        "    window: {start: 2027-01-01T00:00:00}\n"
    )
    (found,) = problems(text)
    assert found.startswith("p.yaml:11:21: rules[0].window.start: Input should have timezone info")


def test_load_rejects_unknown_time_zone() -> None:
    assert problems(HEAD + "time_zone: Mars/Olympus\n") == [
        "p.yaml:7:12: time_zone: unknown time zone 'Mars/Olympus' (use an IANA name)"
    ]


def test_load_rejects_tier_ladder_not_increasing() -> None:
    text = HEAD + (
        "tiers:\n  levels:\n"
        "    - {id: base, name: Base, threshold: 0}\n"
        "    - {id: gold, name: Gold, threshold: 0}\n"
    )
    assert problems(text) == [
        "p.yaml:10:41: tiers.levels[1].threshold:"
        " tier 'gold' must have a higher threshold than 'base' (0)"
    ]


def test_load_rejects_rule_without_effect() -> None:
    text = HEAD + "rules:\n  - id: r\n    on: [purchase]\n"
    assert problems(text) == [
        "p.yaml:8:5: rules[0]: a rule needs an effect:"
        " per_amount, per_item, fixed, formula or multiply"
    ]


def test_load_rejects_reward_for_unknown_tier() -> None:
    text = HEAD + (
        "tiers:\n  levels:\n    - {id: base, name: Base, threshold: 0}\n"
        "rewards:\n  - {id: r, name: R, kind: experience, cost: 10, tiers: [gold]}\n"
    )
    assert problems(text) == [
        "p.yaml:11:58: rewards[0].tiers[0]: unknown tier 'gold' (known: base)"
    ]


def test_load_reports_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ProgramError) as info:
        load_program(tmp_path / "missing.yaml")
    assert (
        str(info.value)
        == f"{tmp_path / 'missing.yaml'}:1:1: cannot read: No such file or directory"
    )


def test_a_fixed_award_beyond_the_largest_is_refused_at_its_line() -> None:
    text = HEAD + (
        "rules:\n"
        "  - {id: most, on: [signup], fixed: 1000000000000000}\n"
        "  - id: over\n    on: [signup]\n    fixed: 1000000000000001\n"
    )
    assert problems(text) == [
        "p.yaml:11:12: rules[1].fixed: 1000000000000001 is more than the largest award"
        " (1000000000000000 points): the ledger could never post it"
    ]
    last = text.rsplit("  - id: over", 1)[0]
    assert parse_program(last, name="p.yaml").rules[0].fixed == 10**15


def test_a_whole_number_written_with_a_fraction_is_named_so() -> None:
    # YAML floats are read as text: pydantic used to say "unable to parse string as an
    # integer" for fixed: 1.5, though the file holds no string.
    text = HEAD + (
        "rules:\n"
        "  - {id: a, on: [signup], fixed: 1.5}\n"
        "  - {id: b, on: [signup], fixed: 1, priority: 2.5}\n"
        "  - {id: c, on: [signup], fixed: 1e3}\n"
        "  - {id: d, on: [signup], fixed: ten}\n"
    )
    assert problems(text) == [
        "p.yaml:8:34: rules[0].fixed: Input should be a valid integer,"
        " got a number with a fractional part",
        "p.yaml:9:47: rules[1].priority: Input should be a valid integer,"
        " got a number with a fractional part",
        "p.yaml:10:34: rules[2].fixed: Input should be a valid integer, got 1e3: write 1000",
        "p.yaml:11:34: rules[3].fixed: Input should be a valid integer,"
        " unable to parse string as an integer",
    ]


def test_a_problem_inside_a_block_expression_is_placed_at_its_file_line_and_column() -> None:
    # The place used to be the `when:` line with a column of the folded text ("at column
    # 26"), or a line of the block ("at line 2 column 4"), on no line of the file.
    text = HEAD + (
        "rules:\n"
        "  - id: folded\n    on: [purchase]\n    fixed: 5\n"
        "    when: >-\n"
        "      member.purchases == 0\n"
        '      && event.hour == "14"\n'
        "  - id: literal\n    on: [purchase]\n    fixed: 5\n"
        "    when: |\n"
        "      member.purchases == 0 &&\n"
        '         event.weekday <= "5"\n'
        "  - id: syntax\n    on: [purchase]\n    fixed: 5\n"
        "    when: >-\n"
        "      member.purchases == 0\n"
        "      && event.hour >\n"
        "  - id: quoted\n    on: [purchase]\n    fixed: 5\n"
        "    when: 'member.purchases == 0 && event.hour == \"14\"'\n"
    )
    found = problems(text)
    assert [p.split(": ", 1)[0] for p in found] == [
        "p.yaml:13:10",  # `event` of event.hour, after "      && "
        "p.yaml:19:10",
        "p.yaml:25:22",  # just after the last character: the expression ends too soon
        "p.yaml:29:11",  # one line: the value's place, the column in the expression
    ]
    assert found[0] == (
        'p.yaml:13:10: rules[0].when: event.hour == "14" is never true: event.hour is an int'
        ' and "14" a string; write event.hour == 14'
    )
    assert found[1].startswith(
        'p.yaml:19:10: rules[1].when: event.weekday <= "5" is an error on every event:'
    )
    assert found[2].startswith(
        "p.yaml:25:22: rules[2].when: invalid CEL expression: Syntax error: mismatched input"
    )
    assert 'event.hour == "14" is never true (at column 26):' in found[3]
