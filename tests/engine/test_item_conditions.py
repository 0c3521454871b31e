"""Per-item rules: conditions run as Python read the basket lines themselves and decide
exactly what CEL decides, points, trace and errors included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fidelite.engine import Evaluator, Event, MemberState
from fidelite.engine.context import ITEM_ATTRIBUTES, ContextFactory
from fidelite.engine.native import translate_item
from fidelite.program.expression import ITEM_VARIABLES
from fidelite.program.variables import ITEM_FIELDS
from tests.engine.helpers import member, program, purchase

# Conditions reading item fields of every type, with event and member fields; two
# rules share a condition; a CEL condition that fails on some lines (division by zero
# when the quantity is 2); a CEL rule reading event.items beside Python item conditions.
RULES = """\
tiers:
  levels:
    - {id: silver, name: Silver, threshold: 0}
    - {id: gold, name: Gold, threshold: 1000}
rules:
  - id: beans
    on: [purchase]
    per_item: {when: 'item.category == "beans"', points_per_unit: 5}
  - id: beans_again
    on: [purchase]
    per_item: {when: 'item.category == "beans"', points_per_amount: 1.5, per: 3}
    rounding: half_up
  - id: dear_lines
    on: [purchase]
    per_item:
      when: item.price >= 9.99 && item.quantity > 1 || item.sku in ["HOUSE", "B1"]
      points_per_amount: 2
      per: 0.7
    rounding: ceil
  - id: web_pastry
    on: [purchase]
    per_item:
      when: item.category == "pastry" && event.channel == "web" && member.tier != "gold"
      points_per_unit: 0.25
      points_per_amount: 1
    rounding: half_even
  - id: cheap_web
    on: [purchase]
    per_item:
      when: item.price * 2.0 - 1.5 < event.amount - 20.0 && event.hour >= 12
      points_per_unit: 1
  - id: every_line
    on: [purchase]
    per_item: {points_per_unit: 0.5}
  - id: failing
    on: [purchase]
    per_item: {when: 100 / (item.quantity - 2) > 10, points_per_unit: 3}
  - id: sku_prefix
    on: [purchase]
    per_item: {when: 'item.sku.startsWith("B")', points_per_unit: 2}
  - id: big_basket
    on: [purchase]
    when: event.items.exists(i, i.quantity >= 3)
    fixed: 7
  - id: amount_too
    on: [purchase]
    per_amount: {points: 1}
    per_item: {when: item.quantity == 1, points_per_amount: 3}
    cap_per_event: 150
"""
PROGRAM = program(RULES)
FAST = Evaluator(PROGRAM)
CEL_ONLY = Evaluator(PROGRAM, native=False)
START = datetime(2026, 11, 2, 8, tzinfo=UTC)

lines = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.sampled_from(["B1", "HOUSE", "P2", "T9"]),
            "category": st.sampled_from(["beans", "pastry", "tea", ""]),
            "quantity": st.integers(1, 4),
            "price": st.decimals(min_value=0, max_value=30, places=3),
        }
    ),
    max_size=5,
)


@st.composite
def purchases(draw: st.DrawFn) -> Event:
    data: dict[str, Any] = {
        "id": "e",
        "type": "purchase",
        "member": "m",
        "at": START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 14))),
        "amount": draw(st.decimals(min_value=0, max_value=200, places=2)),
        "channel": draw(st.sampled_from(["web", "store"])),
        "items": draw(lines),
    }
    return Event.model_validate(data)


@settings(max_examples=300, deadline=None)
@given(event=purchases(), tier=st.sampled_from([None, "gold", "silver"]))
def test_item_conditions_as_python_decide_as_cel(event: Event, tier: str | None) -> None:
    state = MemberState("m", tier=tier)
    fast = FAST.evaluate(event, state)
    assert fast == CEL_ONLY.evaluate(event, state)
    assert fast.as_dict() == CEL_ONLY.evaluate(event, state).as_dict()


def test_conditions_translatable_run_as_python_the_others_in_cel() -> None:
    assert FAST.cel_expressions() == [
        "100 / (item.quantity - 2) > 10",
        'item.sku.startsWith("B")',
        "event.items.exists(i, i.quantity >= 3)",
    ]


def test_a_failing_cel_item_condition_is_the_rules_error_only() -> None:
    event = purchase(
        "10",
        items=[
            {"sku": "B1", "category": "beans", "quantity": 2, "price": "4.00"},
            {"sku": "T9", "category": "tea", "quantity": 1, "price": "3.00"},
        ],
    )
    decision = FAST.evaluate(event, member())
    assert [(t.rule, t.outcome.value, t.points, t.note) for t in decision.trace] == [
        ("beans", "matched", 10, ""),
        ("beans_again", "matched", 4, ""),  # 8.00 / 3 x 1.5 = 4.0
        ("dear_lines", "matched", 23, ""),  # B1: 8.00 / 0.7 x 2 = 22.857..., ceil
        ("web_pastry", "no_points", 0, ""),
        ("cheap_web", "no_points", 0, ""),  # 10:00 Paris: hour 10
        ("every_line", "matched", 1, ""),  # 3 units x 0.5 = 1.5, floor
        ("failing", "condition_error", 0, "ZeroDivisionError: division by zero in CEL expression"),
        ("sku_prefix", "matched", 4, ""),
        ("big_basket", "condition_false", 0, ""),
        ("amount_too", "matched", 19, ""),  # 10 + 3.00 x 3
    ]
    assert decision == CEL_ONLY.evaluate(event, member())


def test_no_basket_gives_no_item_points() -> None:
    decision = FAST.evaluate(purchase("12.50"), member())
    assert [(t.rule, t.outcome.value, t.points) for t in decision.trace] == [
        ("beans", "no_points", 0),
        ("beans_again", "no_points", 0),
        ("dear_lines", "no_points", 0),
        ("web_pastry", "no_points", 0),
        ("cheap_web", "no_points", 0),
        ("every_line", "no_points", 0),
        ("failing", "no_points", 0),
        ("sku_prefix", "no_points", 0),
        ("big_basket", "condition_false", 0),
        ("amount_too", "matched", 12),
    ]
    assert decision == CEL_ONLY.evaluate(purchase("12.50"), member())


def test_basket_lines_are_not_built_when_only_python_conditions_read_them() -> None:
    engine = Evaluator(
        program(
            "rules:\n"
            "  - id: beans\n    on: [purchase]\n"
            "    per_item: {when: 'item.category == \"beans\"', points_per_unit: 5}\n"
            "  - id: web\n    on: [purchase]\n    when: event.channel == 'web'\n    fixed: 1\n"
        )
    )
    event = purchase("5", channel="web", items=[{"sku": "B1", "category": "beans", "price": "2"}])
    values = engine.context_factory("purchase").values(event, member())
    assert values == {"event": {"channel": "web"}, "member": {}}
    assert [(t.rule, t.points) for t in engine.evaluate(event, member()).trace] == [
        ("beans", 5),
        ("web", 1),
    ]


def test_item_attributes_give_what_event_items_holds() -> None:
    assert set(ITEM_ATTRIBUTES) == set(ITEM_FIELDS)
    needed = {"event": frozenset({"items"}), "member": frozenset()}
    factory = ContextFactory(needed, PROGRAM.zone)
    event = purchase(
        "5", items=[{"sku": "B1", "category": "beans", "quantity": 3, "price": "2.10"}]
    )
    (line,) = factory.values(event, member())["event"]["items"]
    (item,) = event.items
    for name, convert in ITEM_ATTRIBUTES.items():
        value = getattr(item, name)
        assert line[name] == (value if convert is None else convert(value))
        assert type(line[name]) is ITEM_FIELDS[name]


def test_item_closure_reads_the_item_and_the_values() -> None:
    condition = translate_item(
        'item.price > 2.0 && item.category == "beans" && event.channel == "web"',
        ITEM_VARIABLES,
    )
    assert condition is not None
    event = purchase(
        "5", items=[{"sku": "B1", "category": "beans", "quantity": 3, "price": "2.10"}]
    )
    (item,) = event.items
    assert condition({"event": {"channel": "web"}}, item) is True
    assert condition({"event": {"channel": "store"}}, item) is False
    assert item.price == Decimal("2.10")  # read, not changed
    assert translate_item("item.sku.startsWith('B')", ITEM_VARIABLES) is None
