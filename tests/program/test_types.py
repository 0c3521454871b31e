"""CEL type errors are load-time errors; expressions that merely depend on data are not."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fidelite.engine import Event, MemberState
from fidelite.engine.context import EVENT_FIELDS, MEMBER_FIELDS, ContextFactory
from fidelite.program import ProgramError, parse_program
from fidelite.program.comparison import ORDERINGS, comparisons
from fidelite.program.expression import RULE_VARIABLES, compile_expression
from fidelite.program.probe import Result, type_problem
from fidelite.program.variables import CONTAINER_FIELDS, FIELD_TYPES, ITEM_FIELDS

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

ARITHMETIC = (
    "arithmetic needs two operands of one type: write 3.0 rather than 3 next to a double,"
    " or convert with double(...) or int(...)"
)
NO_OVERLOAD = (
    "type error: No such overload: the operation is not defined for the given operand types"
)


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("key", "source", "column", "message"),
    [
        (
            "formula",
            "event.amount * 3",
            14,
            "type error: Unsupported operation: double * int (event.amount is a double); "
            + ARITHMETIC,
        ),
        (
            "formula",
            "member.purchases * 2.0",
            14,
            NO_OVERLOAD + " (member.purchases is an int); "
            "no CEL operator or function takes these operand types",
        ),
        (
            "when",
            'event.amount > "x"',
            11,
            'event.amount > "x" is an error on every event: event.amount is a double and "x"'
            " a string; compare values of one type: convert one side with string(), int() or"
            " double()",
        ),
        (
            "when",
            "!event.amount",
            11,
            NO_OVERLOAD + " (event.amount is a double); "
            "no CEL operator or function takes these operand types",
        ),
        (
            "when",
            "event.amount",
            11,
            "a condition must be true or false, but this one gives a double",
        ),
        (
            "formula",
            "event.channel",
            14,
            "a formula must give a number (int or double), but this one gives a string",
        ),
        (
            "formula",
            "event.hour >= 12",
            14,
            "a formula must give a number (int or double), but this one gives a bool",
        ),
    ],
)
def test_load_rejects_type_error_with_rule_line_and_field(
    key: str, source: str, column: int, message: str
) -> None:
    effect = "" if key == "formula" else "    fixed: 1\n"
    line = 10 if key == "formula" else 11
    text = HEAD + effect + f"    {key}: '{source}'\n"
    assert problems(text) == [f"p.yaml:{line}:{column}: rules[0].{key}: {message}"]


@pytest.mark.parametrize(
    "source",
    [
        # behind a guard that only some events pass: amounts above 100, a channel
        "event.amount >= 100.0 && event.amount * 2 > 300.0",
        'event.channel == "web" && member.purchases * 1.5 > 3.0',
        # inside a macro, on baskets with lines
        "event.items.exists(line, line.price * 2 > 10.0)",
        # on the basket size (an int)
        "size(event.items) * 1.5 > 2.0",
        '"vip" in member.segments && event.amount + 1 > 2.0',
    ],
)
def test_load_rejects_type_error_reached_only_by_some_events(source: str) -> None:
    (found,) = problems(HEAD + f"    fixed: 1\n    when: '{source}'\n")
    assert found.startswith("p.yaml:11:11: rules[0].when: type error: ")


def test_load_rejects_type_error_in_per_item_condition() -> None:
    text = (
        HEAD
        + "    per_item: {when: 'item.quantity > 1 && item.price * 2 > 3.0', points_per_unit: 1}\n"
    )
    assert problems(text) == [
        "p.yaml:10:22: rules[0].per_item.when: type error: Unsupported operation: double * int"
        " (item.price is a double, item.quantity is an int); " + ARITHMETIC
    ]


def test_load_rejects_function_that_takes_no_such_arguments() -> None:
    text = HEAD + "    fixed: 1\n    when: 'event.channel.startsWith(1)'\n"
    assert problems(text) == [
        "p.yaml:11:11: rules[0].when: no CEL function startsWith() takes these arguments"
        " (event.channel is a string) (see the CEL language definition for the functions"
        " and their argument types)"
    ]


def test_load_rejects_invalid_regular_expression() -> None:
    (found,) = problems(HEAD + "    fixed: 1\n    when: 'event.channel.matches(\"[\")'\n")
    assert found.startswith(
        "p.yaml:11:11: rules[0].when: invalid regular expression: Function 'matches' error:"
    )


@pytest.mark.parametrize(
    ("key", "source"),
    [
        ("when", "event.amount > 10"),  # comparisons mix int and double
        ("when", "event.hour == 14.0 || member.purchases < 2.5"),
        ("when", "has(event.attributes.stars) && event.attributes.stars >= 1"),
        ("when", "event.attributes.lane == 2"),  # a missing attribute is per event
        ("when", "event.items.exists(line, line.price > 10.0)"),
        ("when", "event.items.all(line, line.quantity >= 2) && size(event.items) > 0"),
        ("when", 'event.date >= "2026-12-01" && event.channel in ["web", "app"]'),
        ("when", 'member.tier == "" || member.tier == null'),
        ("formula", "100.0 / event.amount"),  # infinite for a zero amount: per event
        ("formula", "member.purchases / (member.purchases - 3)"),  # division by zero
        ("formula", "int(event.amount) * 3 + size(event.items)"),
        ("formula", "event.amount * 3.0"),
        ("formula", "double(member.purchases) * 2.0"),
        ("formula", "event.hour >= 12 ? 10 : 2.5"),
        ("formula", "has(event.attributes.bonus) ? event.attributes.bonus : 0"),
    ],
)
def test_load_accepts_expression_that_only_depends_on_data(key: str, source: str) -> None:
    effect = "" if key == "formula" else "    fixed: 1\n"
    program = parse_program(HEAD + effect + f"    {key}: '{source}'\n")
    assert getattr(program.rules[0], key).source == source


NEVER = "compare values of one type"
DATE_HINT = (
    'event.date is written "YYYY-MM-DD": compare it with a date so written,'
    ' e.g. event.date >= "2026-11-01"'
)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            'event.weekday == "6"',
            'event.weekday == "6" is never true: event.weekday is an int and "6" a string;'
            " write event.weekday == 6",
        ),
        (
            "event.store != 12",
            "event.store != 12 is always true: event.store is a string and 12 an int;"
            ' write event.store != "12"',
        ),
        (
            'event.weekday in ["6", "7"]',
            'event.weekday in ["6", "7"] is never true: event.weekday is an int and the list'
            " holds strings; write event.weekday in [6, 7]",
        ),
        (
            '"10" == event.amount',
            '"10" == event.amount is never true: "10" is a string and event.amount a double;'
            " write 10.0 == event.amount",
        ),
        (
            'member.segments == "vip"',
            'member.segments == "vip" is never true: member.segments is a list and "vip" a'
            ' string; write "vip" in member.segments',
        ),
        (
            "1 in member.segments",
            "1 in member.segments is never true: 1 is an int and member.segments holds"
            ' strings; write "1" in member.segments',
        ),
        (
            'member.birthday == "true"',
            'member.birthday == "true" is never true: member.birthday is a bool and "true" a'
            " string; write member.birthday == true",
        ),
        (
            "event.hour >= 9 && event.channel == 1",
            "event.channel == 1 is never true (at column 20): event.channel is a string and 1"
            ' an int; write event.channel == "1"',
        ),
        (
            "event.items.exists(line, line.sku == 5)",  # a macro's name over the basket
            "line.sku == 5 is never true (at column 26): line.sku is a string and 5 an int;"
            ' write line.sku == "5"',
        ),
        (
            "size(event.items) > 0 && event.items[0].quantity == event.channel",
            "event.items[0].quantity == event.channel is never true (at column 26):"
            " event.items[0].quantity is an int and event.channel a string; " + NEVER + ":"
            " convert one side with string(), int() or double()",
        ),
        (
            'event.date == timestamp("2026-12-01T00:00:00Z")',
            'event.date == timestamp("2026-12-01T00:00:00Z") is never true: event.date is a'
            ' string and timestamp("2026-12-01T00:00:00Z") a timestamp; ' + DATE_HINT,
        ),
        (
            # Not "20261101": "2026-11-22" >= "20261101" is false ('-' sorts before '1').
            "event.date == 20261101",
            "event.date == 20261101 is never true: event.date is a string and 20261101 an"
            ' int; write event.date == "2026-11-01"',
        ),
        (
            "event.date in [20261101, 20261102]",
            "event.date in [20261101, 20261102] is never true: event.date is a string and"
            ' the list holds ints; write event.date in ["2026-11-01", "2026-11-02"]',
        ),
        (
            "event.date == 2026",  # no date: the form to use, not "2026"
            "event.date == 2026 is never true: event.date is a string and 2026 an int; "
            + DATE_HINT,
        ),
        (
            "event.date == 20261341",  # no such day
            "event.date == 20261341 is never true: event.date is a string and 20261341 an"
            " int; " + DATE_HINT,
        ),
    ],
)
def test_load_rejects_comparison_of_values_that_are_never_equal(source: str, message: str) -> None:
    # CEL gives false for "6" == 6 (no error): the rule used to load and never match.
    text = HEAD + f"    fixed: 1\n    when: '{source}'\n"
    assert problems(text) == [f"p.yaml:11:11: rules[0].when: {message}"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            'event.weekday <= "5" && event.hour >= 14',
            'event.weekday <= "5" is an error on every event (at column 1): event.weekday is'
            ' an int and "5" a string; write event.weekday <= 5',
        ),
        (
            "event.date >= 20261101",
            "event.date >= 20261101 is an error on every event: event.date is a string and"
            ' 20261101 an int; write event.date >= "2026-11-01"',
        ),
        (
            "20261101 <= event.date",
            "20261101 <= event.date is an error on every event: 20261101 is an int and"
            ' event.date a string; write "2026-11-01" <= event.date',
        ),
        (
            'event.hour >= 14 && "2.5" < event.amount',
            '"2.5" < event.amount is an error on every event (at column 21): "2.5" is a'
            " string and event.amount a double; write 2.5 < event.amount",
        ),
        (
            "event.items.exists(line, line.sku > 5)",
            "line.sku > 5 is an error on every event (at column 26): line.sku is a string and"
            ' 5 an int; write line.sku > "5"',
        ),
    ],
)
def test_load_names_the_ordering_of_values_of_two_kinds(source: str, message: str) -> None:
    # CEL refuses the ordering with "no such overload", naming neither side: the message
    # used to list the fields read, so the string "5" of the fault was never mentioned.
    text = HEAD + f"    fixed: 1\n    when: '{source}'\n"
    assert problems(text) == [f"p.yaml:11:11: rules[0].when: {message}"]


def test_comparisons_finds_orderings_only_when_asked() -> None:
    source = 'event.weekday <= "5" && event.channel == "web"'
    assert [c.op for c in comparisons(source)] == ["=="]
    assert [(c.op, c.left.text, c.right.text) for c in comparisons(source, ORDERINGS)] == [
        ("<=", "event.weekday", '"5"')
    ]


def test_load_rejects_comparison_of_mismatched_types_in_per_item_condition() -> None:
    text = HEAD + "    per_item: {when: 'item.quantity == \"2\"', points_per_unit: 1}\n"
    assert problems(text) == [
        'p.yaml:10:22: rules[0].per_item.when: item.quantity == "2" is never true:'
        ' item.quantity is an int and "2" a string; write item.quantity == 2'
    ]


def test_load_rejects_comparison_on_a_later_line_of_the_expression() -> None:
    text = (
        HEAD
        + "    fixed: 1\n    when: >-\n      event.weekday == 6\n\n      || event.store == 12\n"
    )
    # At its place in the file (line 14, after "      || "), not "at line 2 column 4" of
    # the folded text.
    assert problems(text) == [
        "p.yaml:14:10: rules[0].when: event.store == 12 is never true:"
        ' event.store is a string and 12 an int; write event.store == "12"'
    ]


@pytest.mark.parametrize(
    "source",
    [
        "event.hour == 14.0 && event.weekday in [6, 7.0]",  # ints and doubles compare
        'member.tier == "" || member.tier == null',
        'event.attributes.lane == "2" || event.attributes.lane == 2',  # any type
        '(event.hour >= 12 ? "pm" : 0) == "pm"',  # a side whose type varies
        '"vip" in member.segments && event.channel in {"web": 1}',
        'event.items.map(line, line.sku) == ["A"] && event.items.all(l, l.sku != "B")',
        'string(event.store) == "12" && int(event.channel) != 12',
    ],
)
def test_load_accepts_comparisons_of_values_of_one_type(source: str) -> None:
    program = parse_program(HEAD + f"    fixed: 1\n    when: '{source}'\n")
    assert program.rules[0].when is not None and program.rules[0].when.source == source


def test_comparisons_finds_each_operand_and_the_names_macros_bind() -> None:
    source = 'a.b == "x" || c.exists(i, i.d in [1, -2]) && (e ? 1 : 2) != f[0]'
    found = [
        (c.op, c.left.text, c.right.text, c.right.literal, c.start, dict(c.scope))
        for c in comparisons(source)
    ]
    assert found == [
        ("==", "a.b", '"x"', "string", 0, {}),
        ("in", "i.d", "[1, -2]", None, 26, {"i": "c"}),
        ("!=", "(e ? 1 : 2)", "f[0]", None, 45, {}),
    ]
    (in_list,) = [c for c in comparisons(source) if c.op == "in"]
    assert in_list.right.elements is not None
    assert [(e.text, e.literal) for e in in_list.right.elements] == [
        ("1", "number"),
        ("-2", "number"),
    ]
    assert comparisons('Point{x: 1} == "a"') == []  # syntax it does not follow: nothing


def test_type_problem_is_none_for_well_typed_expressions() -> None:
    condition = compile_expression("event.weekday <= 5 && event.hour >= 14", RULE_VARIABLES)
    formula = compile_expression("event.amount * 3.0", RULE_VARIABLES)
    assert type_problem(condition, Result.condition) is None
    assert type_problem(formula, Result.formula) is None
    assert type_problem(formula, Result.condition) == (
        "a condition must be true or false, but this one gives a double"
    )


def test_engine_builds_fields_of_the_declared_types() -> None:
    # The load-time checks try expressions on values of FIELD_TYPES; the engine must
    # build exactly those types, or a checked expression could still fail at run time.
    assert set(EVENT_FIELDS) == set(FIELD_TYPES["event"]) | CONTAINER_FIELDS["event"]
    assert set(MEMBER_FIELDS) == set(FIELD_TYPES["member"]) | CONTAINER_FIELDS["member"]
    needed = {"event": frozenset(EVENT_FIELDS), "member": frozenset(MEMBER_FIELDS)}
    factory = ContextFactory(needed, ZoneInfo("Europe/Paris"))
    event = Event.model_validate(
        {
            "id": "e1",
            "type": "purchase",
            "member": "m1",
            "at": "2026-11-23T10:00:00+01:00",
            "amount": Decimal("12"),
            "coupon": "VIPWELC-7KQ2-M9XD-4HRT-J",
            "items": [{"sku": "B1", "category": "beans", "quantity": 2, "price": "6"}],
            "attributes": {"stars": 4},
        }
    )
    member = MemberState(
        ref="m1",
        tier="gold",
        segments=frozenset({"vip"}),
        purchases=3,
        joined_at=datetime.fromisoformat("2026-01-01T00:00:00+01:00"),
        birth_date=date(1990, 11, 23),
    )
    values = factory.values(event, member)
    for variable in ("event", "member"):
        for name, kind in FIELD_TYPES[variable].items():
            assert type(values[variable][name]) is kind, (variable, name)
    (line,) = values["event"]["items"]
    assert {name: type(value) for name, value in line.items()} == dict(ITEM_FIELDS)
    assert values["member"]["segments"] == ["vip"]
    assert values["event"]["attributes"] == {"stars": 4}
