"""How much a refund reverses of what a purchase earned: in proportion, exactly.

Each earn transaction of the purchase is reversed by
``floor(points x refunded_so_far / purchase_amount) - already_reversed``: computing
from the cumulative refunded amount means partial refunds never drift, and refunding
the whole amount (in one go or in parts) reverses every point, no more. Pending points
are reversed the same way (the ledger reverses pending lots first).

Points an operator reversed on the ledger (``ledger reverse`` of the earn) are gone
already: the refunds share out the earn's points less those, the same way, never more
than the transaction has left and never less than nothing. The refund is recorded
whatever the operator took (its money, the purchase count, caps, budgets, coupon and
tier go as for any refund), so a purchase whose points an operator reversed in full is
still refunded, reversing no points.

Of an earn whose tier bonus a refund of an earlier purchase took back (that purchase's
upgrade undone: :mod:`fidelite.engine.tier_bonus`), the refunds share out the points
less that bonus, as if it had never been earned: ``bonus + floor((points - bonus) x
refunded so far / amount)`` is taken in all, ``reversed`` (the refunds' reversals and
the bonus reversals) already.

What the purchase used of a rule's per-member cap and of a campaign budget is given
back by the same rule (:func:`counters_given_back`), to the period and the budget its
trace says it used: a purchase refunded in full leaves the next purchase the cap and
budget it would have had without it.

A refund dated before its purchase is refused (:func:`check_refund_time`), and so is an
amount that cannot apply (:func:`check_refund_amount`). A purchase of 0 (a free order
that earned a first-purchase bonus) is refunded in full by a refund of 0, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fidelite.engine.decision import Usage
from fidelite.engine.period import period_key
from fidelite.program.rule import Rule


class RefundError(ValueError):
    """A refund that cannot be applied; ``code`` is a stable rejection code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class EarnedTransaction:
    """An earn transaction of the purchase: its ``points``, how many the purchase's
    refunds reversed already (``reversed``) and how many were reversed on the ledger
    otherwise (``taken_otherwise``: by an operator's ``ledger reverse``)."""

    transaction_id: str
    currency: str
    points: int
    reversed: int = 0
    taken_otherwise: int = 0
    bonus_taken: int = 0
    """Of ``points``, the tier bonus refunds of earlier purchases took back (their
    upgrade undone, :mod:`fidelite.engine.tier_bonus`); what they took is in
    ``reversed``."""

    @property
    def refundable(self) -> int:
        """The points the purchase's refunds share out: what the operator left, less the
        tier bonus taken back (as if the purchase had never earned it)."""
        return max(self.points - self.taken_otherwise - self.bonus_taken, 0)


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
    *,
    refunded_whole: bool = False,
) -> list[Reversal]:
    """The reversals for a refund of ``refund_amount`` (raises :class:`RefundError`, see
    :func:`check_refund_amount`; ``refunded_whole``: the purchase is refunded in full
    already). A purchase of 0 is refunded in full by a refund of 0: it reverses every
    point the purchase earned (the first-purchase bonus of a free order), as the full
    refund of any purchase does.

    Of an earn an operator reversed in part, the refunds share out what is left
    (:attr:`EarnedTransaction.refundable`): never more than the transaction has left, a
    full refund all of it; reversed in full, the refund reverses none of it."""
    check_refund_amount(purchase_amount, refunded_before, refund_amount, refunded_whole)
    reversals = []
    for tx in earned:
        share = cumulative_share(tx.refundable, purchase_amount, refunded_before + refund_amount)
        points = share + tx.bonus_taken - tx.reversed
        if points > 0:
            reversals.append(Reversal(tx.transaction_id, tx.currency, points))
    return reversals


def check_refund_amount(
    purchase_amount: Decimal,
    refunded_before: Decimal,
    refund_amount: Decimal,
    refunded_whole: bool = False,
) -> None:
    """Refuse a refund amount that cannot apply to the purchase:

    - ``refund_invalid_amount``: a negative amount, or 0 for a purchase of more than 0.
      Such a refund gives back no money, so no points either (the share of 0 is 0): it
      would be recorded as a refund of the purchase that changes nothing, which is a
      mistake in the data sent (a forgotten amount), not a refund. Only a purchase of 0
      is refunded with 0: that is its full refund.
    - ``refund_exceeds_purchase``: more than what is left to refund (the purchase less
      earlier refunds), or any refund of a purchase already refunded in full
      (``refunded_whole``: for a purchase of 0, nothing else says so), so that a second
      refund never reverses its points, its purchase count or its coupon twice.
    """
    if refund_amount < 0 or (refund_amount == 0 and purchase_amount > 0):
        raise RefundError(
            "refund_invalid_amount",
            f"a refund of {_shown(refund_amount)} gives nothing back of a purchase of "
            f"{_shown(purchase_amount)}: a refund amount must be more than 0 (only a purchase "
            "of 0 is refunded with 0)",
        )
    if refunded_whole:
        raise RefundError(
            "refund_exceeds_purchase",
            f"refund of {_shown(refund_amount)} exceeds the 0 left: the purchase is refunded "
            "in full",
        )
    if refunded_before + refund_amount > purchase_amount:
        left = purchase_amount - refunded_before
        raise RefundError(
            "refund_exceeds_purchase",
            f"refund of {_shown(refund_amount)} exceeds the {_shown(left)} left",
        )


def _shown(amount: Decimal) -> str:
    """``amount`` as sent, without the store's trailing zeros (10, not 10.0000)."""
    return format(amount.normalize(), "f")


def cumulative_share(points: int, purchase_amount: Decimal, refunded: Decimal) -> int:
    """``floor(points x refunded / purchase_amount)``: what refunds of ``refunded`` in all
    take back of ``points``; exactly ``points`` once the whole amount is refunded,
    whatever the decimals. Multiplied before dividing: a third of 30 EUR on 30 points is
    exactly 10 (the share first, 0.333..., gave 9.999... and so 9)."""
    if refunded >= purchase_amount:
        return points
    return int((points * refunded / purchase_amount).to_integral_value(rounding=ROUND_FLOOR))


def check_refund_time(purchase_at: datetime, refund_at: datetime) -> None:
    """Refuse a refund dated before its purchase (``refund_before_purchase``): it would
    take back what was not yet earned and undo an upgrade before it happened."""
    if refund_at < purchase_at:
        shown = purchase_at.astimezone(refund_at.tzinfo)
        raise RefundError(
            "refund_before_purchase",
            f"the refund at {refund_at.isoformat()} is dated before its purchase, "
            f"at {shown.isoformat()}",
        )


@dataclass(frozen=True)
class CountersBack:
    """What a refund gives back of its purchase's use of per-member caps (``usage``:
    points per rule and period key, to subtract from ``rule_usage``) and of campaign
    budgets (``budgets``: points per rule, to subtract from ``rule_budgets.used``)."""

    usage: list[Usage]
    budgets: dict[str, int]


def counters_given_back(
    rules: Iterable[Rule],
    trace: Iterable[Mapping[str, Any]],
    purchase_at: datetime,
    zone: ZoneInfo,
    purchase_amount: Decimal,
    refunded_before: Decimal,
    refund_amount: Decimal,
) -> CountersBack:
    """The share of its purchase's cap and budget use a refund gives back.

    The purchase's trace says what each rule counted: the line of a rule that counted
    its points against the member's period cap names the period (``period``), that of a
    rule that spent them from its campaign budget how many (``budget``). Each is given
    back as points are reversed: ``floor(used x refunded so far / amount)`` less what
    earlier refunds gave back, all of it once the purchase is refunded in full. So a
    refund gives back to the period and the budget the purchase used, never more than
    it took, whatever the program's rules and time zone have become since: a budget
    added after the purchase gets nothing back, a changed zone or cap period does not
    move the period.

    A line without ``period`` (a purchase recorded before traces named it) counted in the
    period of the purchase's local time, in ``zone``, if ``rules`` cap its rule. A line
    without ``budget`` spent no budget: none is given back for it.
    """
    by_id = {rule.id: rule for rule in rules}
    usage: list[Usage] = []
    budgets: dict[str, int] = {}
    after = refunded_before + refund_amount

    def share(used: int) -> int:
        back = cumulative_share(used, purchase_amount, after)
        if purchase_amount:  # a purchase of 0 has one refund, its full one: none before
            back -= cumulative_share(used, purchase_amount, refunded_before)
        return back

    for line in trace:
        rule_id, used = str(line.get("rule")), int(line.get("points") or 0)
        if used <= 0:
            continue
        rule = by_id.get(rule_id)
        period = line.get("period")
        if period is None and rule is not None and rule.cap_per_member is not None:
            period = period_key(rule.cap_per_member.period, purchase_at, zone)
        back = share(used)
        if period is not None and back > 0:
            usage.append(Usage(rule_id, str(period), back))
        spent = int(line.get("budget") or 0)
        back = share(spent) if spent > 0 else 0
        if back > 0:
            budgets[rule_id] = back
    return CountersBack(usage, budgets)
