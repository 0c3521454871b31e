"""Properties of rule evaluation that must hold for any event."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
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
