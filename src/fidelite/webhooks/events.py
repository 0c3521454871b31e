"""The event types a subscription can ask for, and the wildcard.

Names are ``<noun>.<past participle>`` and stable: receivers branch on them. New types
are added at the end; none is ever renamed.
"""

from __future__ import annotations

MEMBER_CREATED = "member.created"
POINTS_EARNED = "points.earned"
POINTS_SPENT = "points.spent"
POINTS_EXPIRING = "points.expiring"
TIER_CHANGED = "tier.changed"
REWARD_REDEEMED = "reward.redeemed"
SURVEY_ANSWERED = "survey.answered"  # reserved: written by the surveys module
POINTS_REVERSED = "points.reversed"
REWARD_CANCELLED = "reward.cancelled"
COUPON_RESTORED = "coupon.restored"  # a full refund gave the purchase's single-use code back
REWARD_USED = "reward.used"  # a redemption's reward was handed over in store

EVENT_TYPES: tuple[str, ...] = (
    MEMBER_CREATED,
    POINTS_EARNED,
    POINTS_SPENT,
    POINTS_EXPIRING,
    TIER_CHANGED,
    REWARD_REDEEMED,
    SURVEY_ANSWERED,
    POINTS_REVERSED,
    REWARD_CANCELLED,
    COUPON_RESTORED,
    REWARD_USED,
)
ALL = "*"
