"""Proportional refund reversals: exact, cumulative, never more than earned."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fidelite.engine.decision import Usage
from fidelite.engine.refund import (
    EarnedTransaction,
    RefundError,
    check_refund_time,
    counters_given_back,
    refund_reversals,
)
from fidelite.program import parse_program


def test_partial_refund_reverses_in_proportion() -> None:
    # 40 of 100 EUR refunded: floor(123 x 0.4) = 49 and floor(5 x 0.4) = 2.
    earned = [EarnedTransaction("t1", "points", 123), EarnedTransaction("t2", "stars", 5)]
    reversals = refund_reversals(Decimal("100"), Decimal("0"), Decimal("40"), earned)
    assert [(r.transaction_id, r.currency, r.points) for r in reversals] == [
        ("t1", "points", 49),
        ("t2", "stars", 2),
    ]


def test_second_refund_uses_cumulative_share() -> None:
    # After 40 (49 reversed), 30 more: floor(123 x 0.7) = 86, minus 49 = 37.
    earned = [EarnedTransaction("t1", "points", 123, reversed=49)]
    (reversal,) = refund_reversals(Decimal("100"), Decimal("40"), Decimal("30"), earned)
    assert reversal.points == 37


def test_refund_beyond_purchase_is_rejected() -> None:
    with pytest.raises(RefundError) as info:
        refund_reversals(Decimal("100"), Decimal("60"), Decimal("40.01"), [])
    assert info.value.code == "refund_exceeds_purchase"


@given(
    points=st.integers(min_value=0, max_value=10**6),
    cents=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=8),
)
def test_refunds_in_any_split_reverse_exactly_everything(points: int, cents: list[int]) -> None:
    amount = Decimal(sum(cents)) / 100
    refunded, reversed_total = Decimal(0), 0
    for part in cents:
        tx = EarnedTransaction("t1", "points", points, reversed=reversed_total)
        step = refund_reversals(amount, refunded, Decimal(part) / 100, [tx])
        reversed_total += sum(r.points for r in step)
        refunded += Decimal(part) / 100
        assert 0 <= reversed_total <= points
    assert reversed_total == points


def test_a_refund_dated_before_its_purchase_is_refused_naming_both_times() -> None:
    purchase = datetime(2026, 12, 1, 9, tzinfo=UTC)
    with pytest.raises(RefundError) as info:
        check_refund_time(purchase, datetime.fromisoformat("2026-11-01T10:00:00+01:00"))
    assert info.value.code == "refund_before_purchase"
    assert str(info.value) == (
        "the refund at 2026-11-01T10:00:00+01:00 is dated before its purchase, "
        "at 2026-12-01T10:00:00+01:00"
    )
    check_refund_time(purchase, purchase)  # at the purchase's own instant: accepted


CAPPED = parse_program("""\
id: shop
name: Shop
time_zone: Europe/Paris
currencies: [{id: points, name: Points, value: 0.01}]
rules:
  - {id: bonus, on: [purchase], fixed: 50, cap_per_member: {points: 50, period: month}}
  - {id: promo, on: [purchase], per_amount: {points: 1}, budget: 100}
  - {id: base, on: [purchase], per_amount: {points: 1}}
""")
TRACE = [  # as the engine writes it: the period the cap counted in, the budget spent
    {
        "rule": "bonus",
        "outcome": "matched",
        "points": 50,
        "currency": "points",
        "period": "2026-12",
    },
    {"rule": "promo", "outcome": "matched", "points": 30, "currency": "points", "budget": 30},
    {"rule": "base", "outcome": "matched", "points": 30, "currency": "points"},
    {"rule": "gone", "outcome": "matched", "points": 7, "currency": "points"},  # rule removed
]


def test_refunds_give_back_cap_and_budget_use_in_proportion_in_the_purchase_period() -> None:
    # Bought at 00:30 on 1 December in Paris (30 November in UTC): the cap counted it in
    # 2026-12. Three refunds of 10 of 30 EUR give back floor(50 x k/3) and floor(30 x k/3).
    at = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    steps = []
    for before in (Decimal(0), Decimal(10), Decimal(20)):
        back = counters_given_back(CAPPED.rules, TRACE, at, CAPPED.zone, Decimal(30), before,
                                   Decimal(10))  # fmt: skip
        steps.append((back.usage, back.budgets))
    assert steps == [
        ([Usage("bonus", "2026-12", 16)], {"promo": 10}),
        ([Usage("bonus", "2026-12", 17)], {"promo": 10}),
        ([Usage("bonus", "2026-12", 17)], {"promo": 10}),
    ]
    whole = counters_given_back(CAPPED.rules, TRACE, at, CAPPED.zone, Decimal("29.99"),
                                Decimal(0), Decimal("29.99"))  # fmt: skip
    assert (whole.usage, whole.budgets) == ([Usage("bonus", "2026-12", 50)], {"promo": 30})


def test_cap_and_budget_use_go_back_where_the_trace_says_whatever_the_rules_now() -> None:
    """The period and the budget the purchase used, as its trace names them: not the
    period of the purchase in the program's zone now (UTC: 2026-11), not a budget the
    rule has now and had not then; a cap or budget since removed still gets its own."""
    at = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    utc = parse_program(
        "id: shop\nname: Shop\ntime_zone: UTC\n"
        "currencies: [{id: points, name: Points, value: 0.01}]\nrules:\n"
        "  - {id: bonus, on: [purchase], fixed: 50, cap_per_member: {points: 50, period: month}}\n"
        "  - {id: promo, on: [purchase], per_amount: {points: 1}, budget: 100}\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, budget: 500}\n"
    )
    back = counters_given_back(utc.rules, TRACE, at, utc.zone, Decimal(30), Decimal(0),
                               Decimal(30))  # fmt: skip
    assert (back.usage, back.budgets) == ([Usage("bonus", "2026-12", 50)], {"promo": 30})
    bare = parse_program(
        "id: shop\nname: Shop\ncurrencies: [{id: points, name: Points, "
        "value: 0.01}]\nrules:\n  - {id: base, on: [purchase], fixed: 1}\n"
    )
    back = counters_given_back(bare.rules, TRACE, at, bare.zone, Decimal(30), Decimal(0),
                               Decimal(15))  # fmt: skip
    assert (back.usage, back.budgets) == ([Usage("bonus", "2026-12", 25)], {"promo": 15})


def test_a_trace_without_period_counted_in_the_local_period_now_and_spent_no_budget() -> None:
    """A purchase recorded before traces named the period: its period is worked out in
    the program's zone as it is now; without ``budget`` its rule spent none."""
    old = [{k: v for k, v in line.items() if k not in ("period", "budget")} for line in TRACE]
    at = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    back = counters_given_back(CAPPED.rules, old, at, CAPPED.zone, Decimal(30), Decimal(0),
                               Decimal(30))  # fmt: skip
    assert (back.usage, back.budgets) == ([Usage("bonus", "2026-12", 50)], {})


def test_a_third_of_the_amount_reverses_exactly_a_third_of_the_points() -> None:
    # floor(30 x 10 / 30) = 10: the share first (0.333...) reversed only 9
    earned = [EarnedTransaction("t1", "points", 30)]
    (reversal,) = refund_reversals(Decimal(30), Decimal(0), Decimal(10), earned)
    assert reversal.points == 10


def test_a_refund_of_0_reverses_everything_a_purchase_of_0_earned() -> None:
    """A free order's bonus (here 100 points and 3 stars) comes back whole with its
    refund of 0, and so do its cap and budget use; refunded in full, it takes no more."""
    earned = [EarnedTransaction("t1", "points", 100), EarnedTransaction("t2", "stars", 3)]
    reversals = refund_reversals(Decimal(0), Decimal(0), Decimal(0), earned)
    assert [(r.transaction_id, r.currency, r.points) for r in reversals] == [
        ("t1", "points", 100),
        ("t2", "stars", 3),
    ]
    at = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    back = counters_given_back(CAPPED.rules, TRACE, at, CAPPED.zone, Decimal(0), Decimal(0),
                               Decimal(0))  # fmt: skip
    assert (back.usage, back.budgets) == ([Usage("bonus", "2026-12", 50)], {"promo": 30})
    for amount in ("0", "0.01"):
        with pytest.raises(RefundError) as again:
            refund_reversals(Decimal(0), Decimal(0), Decimal(amount), earned,
                             refunded_whole=True)  # fmt: skip
        assert again.value.code == "refund_exceeds_purchase"


def test_a_refund_of_0_of_a_paid_purchase_is_refused() -> None:
    with pytest.raises(RefundError) as info:
        refund_reversals(Decimal(10), Decimal(0), Decimal(0), [EarnedTransaction("t", "p", 10)])
    assert info.value.code == "refund_invalid_amount"
    assert str(info.value) == (
        "a refund of 0 gives nothing back of a purchase of 10: a refund amount must be more "
        "than 0 (only a purchase of 0 is refunded with 0)"
    )
