"""Proportional refund reversals: exact, cumulative, never more than earned."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fidelite.engine.refund import EarnedTransaction, RefundError, refund_reversals


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
