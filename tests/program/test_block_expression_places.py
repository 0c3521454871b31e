"""An unknown variable or field, a function given the wrong arguments or an operation
on two types, in an expression written over several lines (``when: |`` or ``>-``), is
reported at the line and column where it is written, as docs/program.md promises, not
at the line of the ``|`` marker."""

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
rules:
"""  # rules start on line 8


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def _rule(rule: str, field: str, lines: list[str], marker: str = "|") -> str:
    effect = "" if field == "formula" else "    fixed: 1\n"
    body = "".join(f"      {line}\n" for line in lines)
    return f"  - id: {rule}\n    on: [purchase]\n{effect}    {field}: {marker}\n{body}"


def test_unknown_names_and_type_errors_are_placed_on_their_own_line() -> None:
    text = HEAD + (
        _rule("field", "when", ["event.amount > 10.0 &&", 'event.chanel == "web"'])  # 8
        + _rule("variable", "when", ['event.channel == "evnt" &&', "evnt.amount > 3.0"])  # 14
        + _rule("operation", "formula", ["event.amount +", "event.amount * 3"], ">-")  # 20
        + _rule(
            "line", "when", ["event.amount > 1.0 &&", 'event.items.exists(i, i.categry == "x")']
        )
        + _rule("function", "when", ["event.amount > 1.0 &&", "size(event.amount) > 2"])  # 31
    )
    assert problems(text) == [
        "p.yaml:13:7: rules[0].when: unknown field event.chanel (fields of event: amount,"
        " attributes, channel, coupon, date, day, hour, items, minute, month, store, type,"
        " weekday, year); did you mean 'channel'?",
        "p.yaml:19:7: rules[1].when: unknown variable 'evnt' (available here: event, member)",
        "p.yaml:24:20: rules[2].formula: type error: Unsupported operation: double * int"
        " (event.amount is a double); arithmetic needs two operands of one type: write 3.0"
        " rather than 3 next to a double, or convert with double(...) or int(...)",
        "p.yaml:30:29: rules[3].when: unknown field i.categry: i is a line of event.items"
        " (fields of a line: category, price, quantity, sku); did you mean 'category'?",
        "p.yaml:36:7: rules[4].when: no CEL function size() takes these arguments"
        " (event.amount is a double) (see the CEL language definition for the functions and"
        " their argument types)",
    ]


def test_a_place_that_is_not_known_stays_at_the_marker() -> None:
    # Two `*`: which one multiplies a double by an int is not known; a name used outside
    # the macro binding it is written twice. Both stay where the expression begins.
    text = HEAD + (
        _rule("operation", "formula", ["event.amount * 2.0 +", "event.amount * 3"])
        + _rule("macro", "when", ["event.items.exists(i, i.price > 1.0) &&", "i.price > 2.0"])
    )
    assert [p.split(": ", 2)[:2] for p in problems(text)] == [
        ["p.yaml:10:14", "rules[0].formula"],
        ["p.yaml:16:11", "rules[1].when"],
    ]
