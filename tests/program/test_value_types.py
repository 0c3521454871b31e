"""A number field refuses true/false and a yes/no field refuses anything but them.

YAML reads ``fixed: true`` as a bool; read as 1 it would give a point per purchase,
and ``budget: true`` a budget of one point: both are mistakes to report at the line.
"""

from __future__ import annotations

import pytest

from fidelite.program import ProgramError, parse_program

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


def test_true_and_false_are_no_numbers_in_any_number_field() -> None:
    text = HEAD + (
        "rules:\n"  # 7
        "  - id: r\n"
        "    on: [purchase]\n"
        "    fixed: true\n"  # 10
        "    priority: false\n"
        "    budget: true\n"
        "    cap_per_event: true\n"
        "rewards:\n"
        "  - id: w\n"  # 15
        "    name: W\n"
        "    kind: experience\n"
        "    cost: true\n"
        "    stock: false\n"
        "expiry:\n"  # 20
        "  mode: after_earning\n"
        "  months: true\n"
        "future_tolerance_minutes: false\n"
    )
    assert problems(text) == [
        "p.yaml:10:12: rules[0].fixed: Input should be a valid integer, got true",
        "p.yaml:11:15: rules[0].priority: Input should be a valid integer, got false",
        "p.yaml:12:13: rules[0].budget: Input should be a valid integer, got true",
        "p.yaml:13:20: rules[0].cap_per_event: Input should be a valid integer, got true",
        "p.yaml:18:11: rewards[0].cost: Input should be a valid integer, got true",
        "p.yaml:19:12: rewards[0].stock: Input should be a valid integer, got false",
        "p.yaml:22:11: expiry.months: Input should be a valid integer, got true",
        "p.yaml:23:27: future_tolerance_minutes: Input should be a valid integer, got false",
    ]


def test_a_yes_no_field_takes_true_false_and_yaml_1_1_words_only() -> None:
    text = HEAD + (
        "tiers:\n"  # 7
        "  levels:\n"
        "    - {id: base, name: Base, threshold: 0}\n"
        "rules:\n"  # 10
        "  - id: r\n"
        "    on: [purchase]\n"
        "    fixed: 5\n"
        '    stop: "off"\n'
        "  - id: s\n"  # 15
        "    on: [purchase]\n"
        "    fixed: 5\n"
        "    stop: 1\n"
    )
    assert problems(text) == [
        "p.yaml:18:11: rules[1].stop: Input should be true or false, got 1",
    ]
    loaded = parse_program(HEAD + "tiers:\n  levels:\n    - {id: base, name: Base, threshold: 0}\n"
                           "    - {id: gold, name: Gold, threshold: 10, earn_multiplier: 2}\n"
                           "rules:\n  - {id: r, on: [purchase], fixed: 5, stop: Yes,"
                           " tier_multiplier: off}\n  - {id: s, on: [purchase], fixed: 5,"
                           ' stop: "no", tier_multiplier: ON}\n')  # fmt: skip
    assert [(r.stop, r.tier_multiplier) for r in loaded.rules] == [(True, False), (False, True)]


def test_numbers_and_bools_written_as_such_still_load() -> None:
    text = HEAD + (
        "rules:\n"
        "  - id: r\n"
        "    on: [purchase]\n"
        "    fixed: 1\n"
        "    priority: 0\n"
        "    budget: 10\n"
        "    stop: false\n"
        "  - id: s\n"
        "    on: [purchase]\n"
        "    per_amount: {points: 1.5}\n"
        "    stop: true\n"
        "future_tolerance_minutes: 0\n"
    )
    program = parse_program(text)
    assert [(r.fixed, r.priority, r.budget, r.stop) for r in program.rules] == [
        (1, 0, 10, False),
        (0, 100, None, True),
    ]
    assert program.future_tolerance_minutes == 0
