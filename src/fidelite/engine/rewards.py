"""Whether a member may redeem a reward now: rejections in a fixed precedence.

The store supplies the counts (stock left, this member's redemptions, available
points); the check itself is pure so the API, the portal and tests agree on it. The
precedence is the order of :class:`RedemptionRejection`: the first failing check wins,
so a client always gets the same code for the same situation. A member who is not
enrolled (or erased) is refused before any of these, by the ledger
(``unknown_member``, ``member_erased``), even for a reward that is unknown too.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from fidelite.program.definition import ProgramDefinition


class RedemptionRejection(StrEnum):
    """Why a redemption is refused, in precedence order."""

    reward_unknown = "reward_unknown"
    reward_not_yet_available = "reward_not_yet_available"
    reward_expired = "reward_expired"
    reward_not_available_for_tier = "reward_not_available_for_tier"
    reward_out_of_stock = "reward_out_of_stock"
    reward_limit_reached = "reward_limit_reached"
    insufficient_points = "insufficient_points"


def check_redemption(
    program: ProgramDefinition,
    reward_id: str,
    *,
    tier: str | None,
    available_points: int,
    redeemed_total: int,
    redeemed_by_member: int,
    at: datetime,
) -> RedemptionRejection | None:
    """``None`` if the member may redeem ``reward_id`` at ``at``, else the rejection.

    ``redeemed_total`` and ``redeemed_by_member`` count redemptions not cancelled.
    """
    reward = program.reward(reward_id)
    if reward is None:
        return RedemptionRejection.reward_unknown
    if reward.valid_from is not None and at < reward.valid_from:
        return RedemptionRejection.reward_not_yet_available
    if reward.valid_until is not None and at >= reward.valid_until:
        return RedemptionRejection.reward_expired
    if reward.tiers and tier not in reward.tiers:
        return RedemptionRejection.reward_not_available_for_tier
    if reward.stock is not None and redeemed_total >= reward.stock:
        return RedemptionRejection.reward_out_of_stock
    limit = reward.per_member_limit
    if limit is not None and redeemed_by_member >= limit:
        return RedemptionRejection.reward_limit_reached
    if available_points < reward.cost:
        return RedemptionRejection.insufficient_points
    return None


def stock_left(stock: int | None, redeemed_total: int) -> int | None:
    """What is left of a reward's ``stock`` once ``redeemed_total`` redemptions not
    cancelled are counted (None: unlimited). Never below 0: a program file may lower a
    stock under what was already given, and then nothing is left, as
    :func:`check_redemption` refuses (``reward_out_of_stock``)."""
    return None if stock is None else max(stock - redeemed_total, 0)
