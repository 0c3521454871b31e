"""Problems in YAML reused through anchors and aliases are placed at the alias, keys
YAML reads as no text are named as written, and a key merged in (``<<: *base``) no
longer crashes the check."""

from __future__ import annotations

import pytest

from fidelite.program import ProgramError, parse_program

HEAD = """\
id: shop
name: Shop
currencies:
  - &points {id: points, name: Points, value: 0.1}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def test_a_problem_in_an_alias_is_placed_at_the_alias() -> None:
    text = HEAD + (
        "  - *points\n"  # 5: a second currency 'points'
        "rules:\n"
        "  - &rule\n"
        "    id: a\n"
        "    on: [purchase]\n"  # 9
        "    fixed: &minus -1\n"
        "  - id: b\n"
        "    on: [purchase]\n"
        "    fixed: *minus\n"  # 13
        "  - *rule\n"  # 14
    )
    assert problems(text) == [
        "p.yaml:5:5: currencies[1].id: duplicate id 'points'",
        "p.yaml:10:12: rules[0].fixed: Input should be greater than or equal to 0",
        "p.yaml:13:12: rules[1].fixed: Input should be greater than or equal to 0",
        "p.yaml:14:5: rules[2].fixed: Input should be greater than or equal to 0",
        "p.yaml:14:5: rules[2].id: duplicate id 'a'",
    ]


def test_a_key_merged_in_is_placed_at_the_merge() -> None:
    text = HEAD + (
        "rules:\n"  # 5
        "  - &base\n"
        "    id: a\n"
        "    on: [purchase]\n"
        "    fixed: -1\n"  # 9
        "  - <<: *base\n"
        "    id: b\n"
        "  - <<: [*base]\n"  # 12
        "    id: c\n"
        "    fixed: 3\n"
    )
    assert problems(text) == [
        "p.yaml:9:12: rules[0].fixed: Input should be greater than or equal to 0",
        "p.yaml:10:9: rules[1].fixed: Input should be greater than or equal to 0",
    ]


def test_keys_yaml_reads_as_a_number_or_null_are_named_as_written() -> None:
    text = HEAD + (
        "rules:\n"
        "  - id: a\n"  # 6
        "    on: [purchase]\n"
        "    1: x\n"
        "    null: y\n"
    )
    assert problems(text) == [
        "p.yaml:6:5: rules[0]: a rule needs an effect: per_amount, per_item, fixed, formula"
        " or multiply",
        "p.yaml:8:8: rules[0].1: Extra inputs are not permitted",
        "p.yaml:9:11: rules[0].null: Extra inputs are not permitted",
    ]


def test_a_yaml_1_1_boolean_key_is_explained() -> None:
    text = (
        "%YAML 1.1\n---\n"
        + HEAD
        + (
            "rules:\n"  # 7
            "  - id: a\n"
            "    on: [purchase]\n"
            "    fixed: 1\n"
        )
    )
    assert problems(text) == [
        "p.yaml:8:5: rules[0].on: Field required",
        "p.yaml:9:9: rules[0].on: Extra inputs are not permitted; YAML 1.1 (a %YAML 1.1 line)"
        " reads the key on as a boolean: quote it ('on':) or remove the %YAML 1.1 line",
    ]
