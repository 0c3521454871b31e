"""Refund reversals of an earn an operator reversed in part or in full on the ledger:
the refunds share out what is left, never more, never less than nothing."""

from __future__ import annotations

from decimal import Decimal

from fidelite.engine.refund import EarnedTransaction, Reversal, refund_reversals


def reversals(refunded_before: str, amount: str, reversed_: int, taken: int) -> list[Reversal]:
    earn = EarnedTransaction("7", "points", 100, reversed=reversed_, taken_otherwise=taken)
    return refund_reversals(Decimal(100), Decimal(refunded_before), Decimal(amount), [earn])


def test_the_refunds_share_out_what_the_operator_left() -> None:
    assert reversals("0", "50", 0, 40) == [Reversal("7", "points", 30)]
    assert reversals("50", "50", 30, 40) == [Reversal("7", "points", 30)]
    assert reversals("0", "100", 0, 40) == [Reversal("7", "points", 60)]


def test_never_more_than_is_left_nor_less_than_nothing() -> None:
    # 50 taken by a first half refund, then 40 by the operator: 10 left
    assert reversals("50", "25", 50, 40) == []  # 45 of the 60 shared out: taken already
    assert reversals("75", "25", 50, 40) == [Reversal("7", "points", 10)]


def test_an_earn_reversed_in_full_by_the_operator_reverses_nothing() -> None:
    assert reversals("0", "100", 0, 100) == []
    assert reversals("0", "30", 0, 100) == []


def test_without_an_operator_reversal_nothing_changes() -> None:
    assert reversals("0", "50", 0, 0) == [Reversal("7", "points", 50)]
    assert reversals("50", "50", 50, 0) == [Reversal("7", "points", 50)]
