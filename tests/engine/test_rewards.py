"""Redemption checks: each rejection code, and their fixed precedence."""

from __future__ import annotations

from datetime import datetime

from fidelite.engine.rewards import RedemptionRejection, check_redemption
from tests.engine.helpers import program

CATALOGUE = program(
    "tiers:\n  levels:\n    - {id: base, name: Base, threshold: 0}\n"
    "    - {id: gold, name: Gold, threshold: 10}\n"
    "rewards:\n"
    "  - id: tour\n    name: Tour\n    kind: experience\n    cost: 100\n    stock: 2\n"
    "    per_member_limit: 1\n    tiers: [gold]\n"
    "    valid_from: 2026-01-01T00:00:00+01:00\n    valid_until: 2027-01-01T00:00:00+01:00\n"
)
NOW = datetime.fromisoformat("2026-06-01T12:00:00+02:00")


def check(**overrides: object) -> RedemptionRejection | None:
    args: dict[str, object] = {
        "tier": "gold",
        "available_points": 100,
        "redeemed_total": 1,
        "redeemed_by_member": 0,
        "at": NOW,
    }
    args.update(overrides)
    reward = str(args.pop("reward", "tour"))
    return check_redemption(CATALOGUE, reward, **args)  # type: ignore[arg-type]


def test_check_redemption_accepts_when_every_condition_holds() -> None:
    assert check() is None


def test_check_redemption_rejects_each_condition() -> None:
    assert check(reward="cruise") is RedemptionRejection.reward_unknown
    before = datetime.fromisoformat("2025-12-31T23:59:59+01:00")
    assert check(at=before) is RedemptionRejection.reward_not_yet_available
    after = datetime.fromisoformat("2027-01-01T00:00:00+01:00")
    assert check(at=after) is RedemptionRejection.reward_expired
    assert check(tier="base") is RedemptionRejection.reward_not_available_for_tier
    assert check(redeemed_total=2) is RedemptionRejection.reward_out_of_stock
    assert check(redeemed_by_member=1) is RedemptionRejection.reward_limit_reached
    assert check(available_points=99) is RedemptionRejection.insufficient_points


def test_check_redemption_reports_first_failure_in_precedence() -> None:
    everything_wrong = check(
        tier="base", redeemed_total=2, redeemed_by_member=1, available_points=0
    )
    assert everything_wrong is RedemptionRejection.reward_not_available_for_tier
    assert (
        check(redeemed_total=2, redeemed_by_member=1, available_points=0)
        is RedemptionRejection.reward_out_of_stock
    )
