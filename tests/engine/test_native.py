"""CEL expressions run as Python: same value as CEL, or left to CEL."""

from __future__ import annotations

import math
from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fidelite.engine.native import translate
from fidelite.program.expression import ITEM_VARIABLES

VALUES: dict[str, dict[str, Any]] = {
    "event": {"amount": 123.45, "channel": "web", "hour": 15, "weekday": 2, "type": "purchase"},
    "member": {"tier": "silver", "segments": ["regulars", "vip"], "birthday": False},
    "item": {"category": "beans", "quantity": 2, "price": 10.0, "sku": "B1"},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('event.amount >= 100.0 && event.channel == "web"', True),
        ("event.weekday <= 5 && event.hour >= 14 && event.hour < 17", True),
        ('item.category == "beans"', True),
        ('item.category == "pastry" || item.quantity > 2', False),
        ("event.amount * 3.0", 370.35),
        ("item.price * 2.0 - 1.5", 18.5),
        ('"vip" in member.segments', True),
        ('"gold" in member.segments', False),
        ("event.hour in [9, 15, -1]", True),
        ("member.birthday == false", True),
        ("true", True),
        ("-event.amount < 0.0", True),
    ],
)
def test_translate_gives_the_value_of_the_expression(source: str, expected: object) -> None:
    native = translate(source, ITEM_VARIABLES)
    assert native is not None
    assert native(VALUES) == expected
    assert type(native(VALUES)) is type(expected)


@pytest.mark.parametrize(
    "source",
    [
        "!member.birthday",  # `!` binds differently in Python
        "event.amount >= 100",  # double against int
        "event.hour + 1 > 15",  # integer arithmetic overflows in CEL only
        "event.amount / 2.0 > 1.0",  # division by zero differs
        "event.hour < 16 < 17",  # chained comparison
        "has(event.attributes.stars)",
        "event.attributes.stars >= 1",
        "size(member.segments) > 1",
        'event.channel == "w\\"eb"',  # escapes
        "event.channel < 'x'",  # ordering of strings is left to CEL
        "event.channel in ['web', 1]",
        "event.hour == 15u",
        "event['hour'] == 15",
        "event",
        "event.items.size() > 0",
        "event.hour == 015",
        "member.tier == null",
        "event.amount > 1.0 ? true : false",
    ],
)
def test_translate_leaves_other_expressions_to_cel(source: str) -> None:
    assert translate(source, ITEM_VARIABLES) is None


def test_translate_refuses_a_variable_not_allowed_here() -> None:
    assert translate('item.category == "beans"', frozenset({"event", "member"})) is None


# Random expressions of the subset, checked against CEL itself.
INT_FIELDS = ["event.hour", "event.weekday", "item.quantity"]
FLOAT_FIELDS = ["event.amount", "item.price"]
STR_FIELDS = ["event.channel", "item.category", "member.tier"]
ints = st.one_of(st.sampled_from(INT_FIELDS), st.integers(-50, 50).map(str))
floats_literal = st.sampled_from(["0.0", "12.5", "1e2", "99.99", "-3.25", "100.0"])
strings = st.one_of(st.sampled_from(STR_FIELDS), st.sampled_from(['"web"', "'beans'", '""']))


def _float_expr() -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(FLOAT_FIELDS), floats_literal)
    return st.recursive(
        leaf,
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        max_leaves=4,
    )


def _comparison() -> st.SearchStrategy[str]:
    ordered = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    equal = st.sampled_from(["==", "!="])
    return st.one_of(
        st.tuples(ints, ordered, ints).map(" ".join),
        st.tuples(_float_expr(), ordered, _float_expr()).map(" ".join),
        st.tuples(strings, equal, strings).map(" ".join),
        st.sampled_from(['"vip" in member.segments', "member.birthday", "true", "false"]),
        st.lists(st.integers(-3, 30), max_size=4).map(lambda xs: f"event.hour in {xs}"),
    )


conditions = st.recursive(
    _comparison(),
    lambda inner: st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    ),
    max_leaves=6,
)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
values = st.fixed_dictionaries(
    {
        "event": st.fixed_dictionaries(
            {
                "amount": finite,
                "channel": st.sampled_from(["web", "store", ""]),
                "hour": st.integers(0, 23),
                "weekday": st.integers(1, 7),
            }
        ),
        "member": st.fixed_dictionaries(
            {
                "tier": st.sampled_from(["", "web", "silver"]),
                "segments": st.lists(st.sampled_from(["vip", "regulars"]), unique=True),
                "birthday": st.booleans(),
            }
        ),
        "item": st.fixed_dictionaries(
            {
                "category": st.sampled_from(["beans", "pastry", ""]),
                "quantity": st.integers(1, 5),
                "price": finite,
            }
        ),
    }
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(source=st.one_of(conditions, _float_expr()), data=values)
def test_translated_expression_equals_cel_on_any_values(source: str, data: Any) -> None:
    native = translate(source, ITEM_VARIABLES)
    assert native is not None, source
    expected = cel.compile(source).execute(cel.Context(variables=data))
    assert _same(native(data), expected), (source, data, expected)
