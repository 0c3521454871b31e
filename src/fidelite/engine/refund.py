"""How much a refund reverses of what a purchase earned: in proportion, exactly.

Each earn transaction of the purchase is reversed by
``floor(points x refunded_so_far / purchase_amount) - already_reversed``: computing
from the cumulative refunded amount means partial refunds never drift, and refunding
the whole amount (in one go or in parts) reverses every point, no more. Pending points
are reversed the same way (the ledger reverses pending lots first).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal


class RefundError(ValueError):
    """A refund that cannot be applied; ``code`` is a stable rejection code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class EarnedTransaction:
    """An earn transaction of the purchase, and how many of its points are already reversed."""

    transaction_id: str
    currency: str
    points: int
    reversed: int = 0


@dataclass(frozen=True)
class Reversal:
    """Points to reverse from one earn transaction."""

    transaction_id: str
    currency: str
    points: int


def refund_reversals(
    purchase_amount: Decimal,
    refunded_before: Decimal,
    refund_amount: Decimal,
    earned: list[EarnedTransaction],
) -> list[Reversal]:
    """The reversals for a refund of ``refund_amount`` (raises :class:`RefundError`)."""
    if refund_amount <= 0:
        raise RefundError("refund_invalid_amount", "a refund amount must be positive")
    if refunded_before + refund_amount > purchase_amount:
        left = purchase_amount - refunded_before
        raise RefundError(
            "refund_exceeds_purchase", f"refund of {refund_amount} exceeds the {left} left"
        )
    if purchase_amount == 0:
        return []
    share = (refunded_before + refund_amount) / purchase_amount
    reversals = []
    for tx in earned:
        target = int((tx.points * share).to_integral_value(rounding=ROUND_FLOOR))
        if refunded_before + refund_amount == purchase_amount:
            target = tx.points  # exact on the last refund, whatever the decimals
        points = target - tx.reversed
        if points > 0:
            reversals.append(Reversal(tx.transaction_id, tx.currency, points))
    return reversals
