"""Properties of rule evaluation that must hold for any event."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import ceil, floor

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fidelite.engine import Evaluator, Event, MemberState, ProgramState
from tests.engine.helpers import program

ENGINE = Evaluator(
    program(
        "rules:\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, priority: 1}\n"
        "  - id: big\n    on: [purchase]\n    priority: 2\n    fixed: 25\n"
        "    when: event.amount >= 50.0\n"
        "    cap_per_member: {points: 50, period: month}\n"
        "  - {id: double, on: [purchase], multiply: 2, cap_per_event: 300, priority: 3}\n"
        "  - {id: promo, on: [purchase], fixed: 10, budget: 1000, priority: 4}\n"
    )
)

amounts = st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False)
used = st.integers(min_value=0, max_value=60)
budget_used = st.integers(min_value=0, max_value=1200)


def buy(amount: Decimal) -> Event:
    return Event(id="p", type="purchase", member="m", at="2026-11-23T10:00:00+01:00", amount=amount)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(amount=amounts, cap_used=used, spent=budget_used)
def test_evaluate_is_deterministic_and_respects_caps(
    amount: Decimal, cap_used: int, spent: int
) -> None:
    member = MemberState("m", rule_points={("big", "2026-11"): cap_used})
    state = ProgramState({"promo": spent})
    first = ENGINE.evaluate(buy(amount), member, state)
    assert first == ENGINE.evaluate(buy(amount), member, state)
    by_rule = {t.rule: t.points for t in first.trace}
    assert 0 <= by_rule["big"] <= max(50 - cap_used, 0)
    assert 0 <= by_rule["double"] <= 300
    assert by_rule["promo"] <= max(1000 - spent, 0)
    assert first.points("points") == sum(by_rule.values())


@settings(max_examples=200)
@given(low=amounts, high=amounts)
def test_more_money_never_earns_fewer_points(low: Decimal, high: Decimal) -> None:
    low, high = min(low, high), max(low, high)
    member = MemberState("m")
    assert ENGINE.evaluate(buy(low), member).points("points") <= ENGINE.evaluate(
        buy(high), member
    ).points("points")


def _rounded(value: Fraction, rounding: str) -> int:
    if rounding == "floor":
        return floor(value)
    if rounding == "ceil":
        return ceil(value)
    if rounding == "half_even":
        return round(value)
    return floor(value + Fraction(1, 2))  # half_up on a value >= 0


rates = st.decimals(min_value="0.01", max_value=1000, places=2, allow_nan=False)
pers = st.one_of(
    st.decimals(min_value="0.01", max_value=100, places=2, allow_nan=False),
    st.sampled_from([Decimal("1.5"), Decimal("0.3"), Decimal(3), Decimal(7), Decimal(1)]),
)
roundings = st.sampled_from(["floor", "ceil", "half_up", "half_even"])


@st.composite
def near_whole(draw: st.DrawFn) -> tuple[Decimal, Decimal, Decimal]:
    """(amount, rate, per) with amount x rate / per a whole or half number when the
    amount's cents allow it: where dividing first went one point off (21.5 x 3 / 1.5)."""
    rate = Decimal(draw(st.integers(1, 30)))
    per = draw(pers)
    whole = Fraction(draw(st.integers(0, 4000)), draw(st.sampled_from([1, 2])))
    amount = Decimal(whole.numerator) * per / rate / whole.denominator
    return amount.quantize(Decimal("0.01")), rate, per


@settings(max_examples=300, deadline=None)
@given(
    case=st.one_of(st.tuples(amounts, rates, pers), near_whole()),
    rounding=roundings,
    fixed=st.integers(1, 5),
)
@example(case=(Decimal("21.5"), Decimal(3), Decimal("1.5")), rounding="floor", fixed=1)
@example(case=(Decimal("25"), Decimal(3), Decimal("1.5")), rounding="ceil", fixed=1)
def test_per_amount_and_per_item_give_the_exact_rational_rounded(
    case: tuple[Decimal, Decimal, Decimal], rounding: str, fixed: int
) -> None:
    amount, rate, per = case
    engine = Evaluator(
        program(
            "rules:\n"
            f"  - {{id: total, on: [purchase], rounding: {rounding},"
            f" per_amount: {{points: {rate}, per: {per}}}}}\n"
            f"  - {{id: lines, on: [purchase], rounding: {rounding},"
            f" per_item: {{points_per_amount: {rate}, per: {per}}}, fixed: {fixed}}}\n"
        )
    )
    # The amount split over two lines whose totals add up to it.
    half = (amount / 2).quantize(Decimal("0.01"))
    items = [
        {"sku": "A", "category": "c", "quantity": 1, "price": half},
        {"sku": "B", "category": "c", "quantity": 1, "price": amount - half},
    ]
    event = Event.model_validate(
        {
            "id": "p",
            "type": "purchase",
            "member": "m",
            "at": "2026-11-23T10:00:00+01:00",
            "amount": amount,
            "items": items,
        }
    )
    exact = Fraction(amount) * Fraction(rate) / Fraction(per)
    by_rule = {t.rule: t.points for t in engine.evaluate(event, MemberState("m")).trace}
    assert by_rule["total"] == _rounded(exact, rounding)
    assert by_rule["lines"] == _rounded(exact + fixed, rounding)
