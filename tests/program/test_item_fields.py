"""A basket line's fields are checked wherever a line is read, not only in ``item``.

``event.items.exists(i, i.categry == "beans")`` compiles and gives ``condition_error``
(a missing key) on every basket, so the rule silently never earns: the field of a
macro's name over ``event.items``, or of an index into it, is judged at load exactly as
``item.categry`` in ``per_item.when`` is.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.engine import Evaluator
from fidelite.program import ProgramError, parse_program
from fidelite.program.expression import ITEM_VARIABLES, RULE_VARIABLES, compile_expression
from tests.engine.helpers import member, program, purchase

HEAD = """\
id: shop
name: Shop
currencies:
  - id: points
    name: Points
    value: 0.1
rules:
  - id: r
    on: [purchase]
"""

LINE = "is a line of event.items (fields of a line: category, price, quantity, sku)"
CATEGORY = "did you mean 'category'?"

_register()
runner = CliRunner()


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ('event.items.exists(i, i.categry == "beans")', f"i.categry: i {LINE}; {CATEGORY}"),
        ('event.items.all(i, i.categry == "beans")', f"i.categry: i {LINE}; {CATEGORY}"),
        (
            'size(event.items.filter(i, i.categry == "beans")) > 0',
            f"i.categry: i {LINE}; {CATEGORY}",
        ),
        ('event.items.exists_one(i, i.categry == "beans")', f"i.categry: i {LINE}; {CATEGORY}"),
        ('"beans" in event.items.map(i, i.categry)', f"i.categry: i {LINE}; {CATEGORY}"),
        (
            "event.items.map(l, l.quantity > 1, l.prise).exists(p, p > 2.0)",
            f"l.prise: l {LINE}; did you mean 'price'?",
        ),
        ("event.items.exists(l, l.colour > 2.0)", f"l.colour: l {LINE}"),
        (
            'size(event.items) > 0 && event.items[0].categry == "beans"',
            f"event.items[0].categry: event.items[0] {LINE}; {CATEGORY}",
        ),
        (
            'event . items [ 0 ] . categry == "beans"',
            f"event.items[0].categry: event.items[0] {LINE}; {CATEGORY}",
        ),
        ("event.items.exists(i, has(i.categry))", f"i.categry: i {LINE}; {CATEGORY}"),
        # a macro over the lines a filter kept ranges over lines too
        (
            'event.items.filter(i, i.price > 5.0).exists(j, j.categry == "beans")',
            f"j.categry: j {LINE}; {CATEGORY}",
        ),
        # nested macros: the outer name is still a line inside the inner macro
        (
            "event.items.exists(a, event.items.exists(b, a.skuu == b.sku))",
            f"a.skuu: a {LINE}; did you mean 'sku'?",
        ),
        # a macro's name hides the one of an enclosing macro over something else
        (
            'member.segments.exists(i, event.items.exists(i, i.categry == "beans"))',
            f"i.categry: i {LINE}; {CATEGORY}",
        ),
        # a macro's name hides the variable of the same name: member is a line here
        (
            'event.items.exists(member, member.categry == "beans")',
            f"member.categry: member {LINE}; {CATEGORY}",
        ),
    ],
)
def test_an_unknown_field_of_a_basket_line_is_refused_where_it_is_read(
    when: str, message: str
) -> None:
    text = HEAD + f"    fixed: 1\n    when: '{when}'\n"
    assert problems(text) == [f"p.yaml:11:11: rules[0].when: unknown field {message}"]


def test_a_line_field_is_checked_in_per_item_conditions_and_formulas() -> None:
    text = HEAD + (
        "    formula: double(size(event.items.filter(i, i.quantty > 1)))\n"
        "  - id: s\n"
        "    on: [purchase]\n"
        "    per_item:\n"
        "      when: 'event.items.exists(o, o.sku != item.sku && o.categry == item.category)'\n"
        "      points_per_unit: 1\n"
    )
    assert problems(text) == [
        f"p.yaml:10:14: rules[0].formula: unknown field i.quantty: i {LINE};"
        " did you mean 'quantity'?",
        f"p.yaml:14:13: rules[1].per_item.when: unknown field o.categry: o {LINE}; {CATEGORY}",
    ]


def test_a_misspelt_variable_field_is_named_with_its_likely_spelling() -> None:
    text = HEAD + "    fixed: 1\n    when: event.amont > 1.0\n"
    assert problems(text) == [
        "p.yaml:11:11: rules[0].when: unknown field event.amont (fields of event: amount,"
        " attributes, channel, coupon, date, day, hour, items, minute, month, store, type,"
        " weekday, year); did you mean 'amount'?"
    ]


@pytest.mark.parametrize(
    ("source", "allowed", "fields"),
    [
        ('event.items.exists(i, i.category == "beans")', RULE_VARIABLES, {"event": {"items"}}),
        ("event.items[0].price > 1.0", RULE_VARIABLES, {"event": {"items"}}),
        (
            'event.items.exists(member, member.category == "beans")',
            RULE_VARIABLES,
            {"event": {"items"}},
        ),
        (
            "event.items.exists(event, event.quantity > 1)",
            RULE_VARIABLES,
            {"event": {"items"}},
        ),
        (
            'member.segments.exists(item, item.startsWith("v"))',
            ITEM_VARIABLES,
            {"member": {"segments"}},
        ),
        (
            "event.items.exists(o, o.sku != item.sku && o.category == item.category)",
            ITEM_VARIABLES,
            {"event": {"items"}, "item": {"sku", "category"}},
        ),
        ('event.items.exists(i, i["categry"] == "beans")', RULE_VARIABLES, {"event": {"items"}}),
        ('"event.colour" == event.channel', RULE_VARIABLES, {"event": {"channel"}}),
    ],
)
def test_a_macros_name_is_no_read_of_the_variable_it_hides(
    source: str, allowed: frozenset[str], fields: dict[str, set[str]]
) -> None:
    expression = compile_expression(source, allowed)
    assert expression.fields == {name: frozenset(read) for name, read in fields.items()}


def test_valid_line_reads_and_shadowing_names_load_and_earn() -> None:
    engine = Evaluator(
        program(
            "rules:\n"
            "  - id: beans\n"
            "    on: [purchase]\n"
            "    fixed: 1\n"
            "    when: 'event.items.exists(i, i.category == \"beans\")'\n"
            "  - id: first_dear\n"
            "    on: [purchase]\n"
            "    fixed: 10\n"
            "    when: size(event.items) > 0 && event.items[0].price >= 5.0\n"
            "  - id: shadow\n"
            "    on: [purchase]\n"
            "    fixed: 100\n"
            "    when: 'event.items.exists(member, member.quantity >= 2)'\n"
            "  - id: pairs\n"
            "    on: [purchase]\n"
            "    per_item:\n"
            "      when: 'event.items.exists(o, o.sku != item.sku\n"
            "        && o.category == item.category)'\n"
            "      points_per_unit: 1000\n"
        )
    )
    items = [
        {"sku": "B1", "category": "beans", "quantity": 2, "price": "6"},
        {"sku": "B2", "category": "beans", "quantity": 1, "price": "4"},
    ]
    decision = engine.evaluate(purchase("16", items=items), member())
    assert [(t.rule, t.outcome.value, t.points) for t in decision.trace] == [
        ("beans", "matched", Decimal(1)),
        ("first_dear", "matched", Decimal(10)),
        ("shadow", "matched", Decimal(100)),
        ("pairs", "matched", Decimal(3000)),
    ]


def test_check_refuses_the_misspelt_line_field_and_names_it(tmp_path: Path) -> None:
    file = tmp_path / "program.yaml"
    text = (
        "id: celf\nname: Cel\ntime_zone: Europe/Paris\n"
        "currencies:\n  - {id: points, name: P, value: 0}\n"
        "rules:\n  - id: f\n    on: [purchase]\n"
        '    when: event.items.exists(i, i.categry == "beans")\n    fixed: 1\n'
    )
    file.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["program", "check", str(file), "--format", "json"])
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["error"]["problems"]
    assert (problem["line"], problem["field"]) == (9, "rules[0].when")
    assert problem["message"] == f"unknown field i.categry: i {LINE}; {CATEGORY}"
    assert file.read_text(encoding="utf-8") == text
