"""A string compared with ``event.coupon`` that the recorded code never is: refused at
load, naming the place, the literal and what to write (``event.coupon`` is the code as
recorded: upper-cased, spaces dropped), so such a rule no longer silently gives nothing."""

from __future__ import annotations

import pytest

from fidelite.program import ProgramError, parse_program
from fidelite.program.definition import ProgramDefinition

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - id: r
    on: [purchase]
    fixed: 5
"""
WHEN = "p.yaml:9:11: rules[0].when: "
RECORDED = "event.coupon is the code as recorded (upper-cased, spaces dropped)"


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def with_when(when: str) -> str:
    return PROGRAM + f"    when: '{when}'\n"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            'event.coupon == "hello30"',
            f'event.coupon == "hello30": {RECORDED}, so "hello30" never matches it;'
            ' write "HELLO30"',
        ),
        (
            '"hello30" == event.coupon',
            f'"hello30" == event.coupon: {RECORDED}, so "hello30" never matches it;'
            ' write "HELLO30"',
        ),
        (
            'event.coupon != "Hello 30"',
            f'event.coupon != "Hello 30": {RECORDED}, so "Hello 30" never matches it;'
            ' write "HELLO30"',
        ),
        (
            'event.channel == "web" && event.coupon in ["HELLO30", "spring 5"]',
            f'event.coupon in ["HELLO30", "spring 5"] (at column 27): {RECORDED}, so'
            ' "spring 5" never matches it; write "SPRING5"',
        ),
        (
            'event.coupon.startsWith("spring")',
            f'event.coupon.startsWith("spring"): {RECORDED}, so "spring" never matches it;'
            ' write "SPRING"',
        ),
        (
            'event.amount > 10.0 && event.coupon.endsWith("-vip")',
            f'event.coupon.endsWith("-vip") (at column 24): {RECORDED}, so "-vip" never'
            ' matches it; write "-VIP"',
        ),
        (
            '(event.coupon).contains("x 1")',
            f'(event.coupon).contains("x 1"): {RECORDED}, so "x 1" never matches it; write "X1"',
        ),
        (
            '"spring sale".startsWith(event.coupon)',
            f'"spring sale".startsWith(event.coupon): {RECORDED}, so "spring sale" never'
            ' matches it; write "SPRINGSALE"',
        ),
        (  # a whole code without its dashes is recorded with them
            'event.coupon == "SPRING7KQ2M9XD4HRAS"',
            f'event.coupon == "SPRING7KQ2M9XD4HRAS": {RECORDED}, so "SPRING7KQ2M9XD4HRAS"'
            ' never matches it; write "SPRING-7KQ2-M9XD-4HRA-S"',
        ),
    ],
)
def test_a_literal_the_recorded_coupon_never_is_is_refused(when: str, message: str) -> None:
    assert problems(with_when(when)) == [WHEN + message]


def test_every_such_literal_of_a_block_is_placed_at_its_line() -> None:
    text = PROGRAM + (
        "    when: >-\n"
        '      event.coupon == "hello30" ||\n'
        '      event.coupon.startsWith("spring")\n'
    )
    assert problems(text) == [
        f'p.yaml:10:7: rules[0].when: event.coupon == "hello30": {RECORDED}, so "hello30"'
        ' never matches it; write "HELLO30"',
        f'p.yaml:11:7: rules[0].when: event.coupon.startsWith("spring"): {RECORDED}, so'
        ' "spring" never matches it; write "SPRING"',
    ]


def test_a_program_built_in_code_is_refused_too() -> None:
    fields = {
        "id": "shop",
        "name": "Shop",
        "currencies": [{"id": "points", "name": "Points", "value": "0.01"}],
        "rules": [{"id": "r", "on": ["purchase"], "fixed": 5, "when": 'event.coupon == "x"'}],
    }
    with pytest.raises(ValueError, match='so "x" never matches it; write "X"'):
        ProgramDefinition.model_validate(fields)


@pytest.mark.parametrize(
    "when",
    [
        'event.coupon == "HELLO30"',
        'event.channel == "web" && event.coupon == "HELLO30"',
        'event.coupon.startsWith("SPRING-") && event.store == "paris"',
        'event.coupon in ["HELLO30", "", "SPRING-7KQ2-M9XD-4HRA-S"]',
        'event.coupon != ""',
        "event.coupon.contains(event.channel)",
        # ``event`` bound by the macro is no event: its "coupon" is not judged
        '[{"coupon": "x"}].exists(event, event.coupon == "x")',
    ],
)
def test_literals_written_as_recorded_and_other_literals_load(when: str) -> None:
    program = parse_program(with_when(when), name="p.yaml")
    assert program.rules[0].when is not None and program.rules[0].when.source == when
