"""Tier literals next to ``member.tier``: a verdict of "never true" only when it is, and
every problem of an expression reported at once (QA walk-through of bad2/bad3.yaml)."""

from __future__ import annotations

import pytest

from fidelite.program import ProgramError, parse_program
from fidelite.program.definition import ProgramDefinition

TIERED = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
    - {id: gold, name: Gold, threshold: 1000}
rules:
  - id: r
    on: [purchase]
    fixed: 5
"""
WHEN = "p.yaml:14:11: rules[0].when: "
KNOWN = "(known: bronze, silver, gold)"
NO_TIER = 'a member without a tier has ""'


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def with_when(when: str, tiers: str = TIERED) -> str:
    return tiers + f"    when: '{when}'\n"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (  # true for gold members: only the misspelt entry is wrong
            'member.tier in ["gold", "silverr"]',
            f'member.tier in ["gold", "silverr"]: the entry "silverr" is no tier of this'
            f' program {KNOWN}; did you mean "silver"?',
        ),
        (
            '!(member.tier in ["gold", "silverr"])',
            f'member.tier in ["gold", "silverr"] (at column 3): the entry "silverr" is no'
            f' tier of this program {KNOWN}; did you mean "silver"?',
        ),
        (
            'member.tier in ["gold", "silverr"] && event.amount > 10.0',
            f'member.tier in ["gold", "silverr"] (at column 1): the entry "silverr" is no'
            f' tier of this program {KNOWN}; did you mean "silver"?',
        ),
        (  # "" is a member without a tier: a fair value
            'member.tier in ["", "platinum"]',
            f'member.tier in ["", "platinum"]: the entry "platinum" is no tier of this'
            f" program {KNOWN}",
        ),
        (  # a value computed at run time may be any tier
            'member.tier in ["Gold", event.channel]',
            f'member.tier in ["Gold", event.channel]: the entry "Gold" is no tier of this'
            f' program {KNOWN}; did you mean "gold"?',
        ),
        (
            'member.tier in ["Gold", "platinum", "Gold"]',
            f'member.tier in ["Gold", "platinum", "Gold"] is never true: "Gold" and'
            f' "platinum" are no tiers of this program {KNOWN}; {NO_TIER}; did you mean'
            f' "gold" for "Gold"?',
        ),
        (
            '!(member.tier in ["platinum"])',
            f'member.tier in ["platinum"] is never true (at column 3): "platinum" is no tier'
            f" of this program {KNOWN}; {NO_TIER}",
        ),
        (
            '"Gold" == member.tier',
            f'"Gold" == member.tier is never true: "Gold" is no tier of this program {KNOWN};'
            f' {NO_TIER}; did you mean "gold"?',
        ),
        (
            'member.tier != "silverr"',
            f'member.tier != "silverr" is always true: "silverr" is no tier of this program'
            f' {KNOWN}; {NO_TIER}; did you mean "silver"?',
        ),
        (
            'member.tier == ("Gold")',
            f'member.tier == ("Gold") is never true: "Gold" is no tier of this program {KNOWN};'
            f' {NO_TIER}; did you mean "gold"?',
        ),
    ],
)
def test_check_reports_tier_literals_with_a_true_verdict(when: str, message: str) -> None:
    assert problems(with_when(when)) == [WHEN + message]


@pytest.mark.parametrize(
    "when",
    [
        'member.tier == ("gold")',
        'member.tier in ["gold"] && event.amount > 10.0',
        '!(member.tier in ["gold", "silver"])',
        'member.tier in ["", "bronze"] || member.tier != ""',
        '["gold", "silver"].exists(t, member.tier == t)',
        # ``member`` bound by the macro is a map of this list, not the member
        '[{"tier": "x"}].exists(member, member.tier == "x")',
        'member.tier in ["gold", event.channel]',
    ],
)
def test_check_accepts_valid_comparisons_of_member_tier(when: str) -> None:
    program = parse_program(with_when(when), name="p.yaml")
    assert isinstance(program, ProgramDefinition)
    assert program.rules[0].when is not None and program.rules[0].when.source == when


def test_check_does_not_judge_tier_literals_against_a_broken_ladder() -> None:
    # A level that is no mapping may be any tier: only it is reported, not "gold".
    text = with_when(
        'member.tier == "gold"',
        TIERED.replace("    - {id: gold, name: Gold, threshold: 1000}", "    - gold"),
    )
    assert problems(text) == [
        "p.yaml:9:7: tiers.levels[2]: Input should be a valid dictionary or instance of Tier"
    ]


def test_check_reports_every_problem_of_one_condition_in_its_order() -> None:
    # bad2.yaml: the weekday's type error used to hide the tier that does not exist.
    text = with_when('event.weekday == "6" || member.tier == "Gold"')
    assert problems(text) == [
        WHEN + 'event.weekday == "6" is never true (at column 1): event.weekday is an int and'
        ' "6" a string; write event.weekday == 6',
        WHEN + f'member.tier == "Gold" is never true (at column 25): "Gold" is no tier of this'
        f' program {KNOWN}; {NO_TIER}; did you mean "gold"?',
    ]
    reverse = with_when('member.tier == "Gold" || event.weekday == "6"')
    assert problems(reverse) == [
        WHEN + f'member.tier == "Gold" is never true (at column 1): "Gold" is no tier of this'
        f' program {KNOWN}; {NO_TIER}; did you mean "gold"?',
        WHEN + 'event.weekday == "6" is never true (at column 26): event.weekday is an int and'
        ' "6" a string; write event.weekday == 6',
    ]


def test_check_reports_every_tier_literal_of_one_condition() -> None:
    text = with_when('member.tier == "Gold" || member.tier in ["gold", "silverr"]')
    assert problems(text) == [
        WHEN + f'member.tier == "Gold" is never true (at column 1): "Gold" is no tier of this'
        f' program {KNOWN}; {NO_TIER}; did you mean "gold"?',
        WHEN + f'member.tier in ["gold", "silverr"] (at column 26): the entry "silverr" is no'
        f' tier of this program {KNOWN}; did you mean "silver"?',
    ]


def test_check_reports_a_type_error_and_every_comparison_problem() -> None:
    text = with_when('member.tier == "Gold" || event.store == 12 || event.amount * 2 > 1.0')
    assert problems(text) == [
        WHEN + "type error: Unsupported operation: double * int (event.amount is a double,"
        " event.store is a string, member.tier is a string); arithmetic needs two operands of"
        " one type: write 3.0 rather than 3 next to a double, or convert with double(...) or"
        " int(...)",
        WHEN + f'member.tier == "Gold" is never true (at column 1): "Gold" is no tier of this'
        f' program {KNOWN}; {NO_TIER}; did you mean "gold"?',
        WHEN + "event.store == 12 is never true (at column 26): event.store is a string and 12"
        ' an int; write event.store == "12"',
    ]


def test_check_reports_tier_literals_beside_an_unknown_field() -> None:
    text = with_when('member.tier == "Gold" && event.amout > 1.0')
    assert problems(text) == [
        WHEN + "unknown field event.amout (fields of event: amount, attributes, channel, coupon,"
        " date, day, hour, items, minute, month, store, type, weekday, year); did you mean"
        " 'amount'?",
        WHEN + f'member.tier == "Gold" is never true (at column 1): "Gold" is no tier of this'
        f' program {KNOWN}; {NO_TIER}; did you mean "gold"?',
    ]


def test_check_reports_every_problem_of_the_qa_file_at_once() -> None:
    # bad2.yaml's weekend rule, with the problems of the other rules around it.
    text = TIERED + (
        "  - id: weekend\n"
        "    on: [purchase]\n"
        '    when: event.weekday == "6" || member.tier == "Gold"\n'
        "    formula: event.amount * 2\n"
        "  - id: per_line\n"
        "    on: [purchase]\n"
        "    per_item:\n"
        '      when: item.quantity == "2" || member.tier == "vip"\n'
        "      points_per_unit: 1\n"
    )
    assert problems(text) == [
        'p.yaml:16:11: rules[1].when: event.weekday == "6" is never true (at column 1):'
        ' event.weekday is an int and "6" a string; write event.weekday == 6',
        'p.yaml:16:11: rules[1].when: member.tier == "Gold" is never true (at column 25):'
        f' "Gold" is no tier of this program {KNOWN}; {NO_TIER}; did you mean "gold"?',
        "p.yaml:17:14: rules[1].formula: type error: Unsupported operation: double * int"
        " (event.amount is a double); arithmetic needs two operands of one type: write 3.0"
        " rather than 3 next to a double, or convert with double(...) or int(...)",
        'p.yaml:21:13: rules[2].per_item.when: item.quantity == "2" is never true (at column'
        ' 1): item.quantity is an int and "2" a string; write item.quantity == 2',
        'p.yaml:21:13: rules[2].per_item.when: member.tier == "vip" is never true (at column'
        f' 25): "vip" is no tier of this program {KNOWN}; {NO_TIER}',
    ]
