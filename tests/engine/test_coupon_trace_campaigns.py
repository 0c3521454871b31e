"""The decision trace blames a refused code on its own campaign's rules only: the
rules of other campaigns say the code is of another campaign, accepted or not."""

from __future__ import annotations

import pytest

from fidelite.engine import Evaluator, MemberState, ProgramState
from fidelite.engine.coupon import CouponStatus, make_code
from tests.engine.helpers import program, purchase

PROGRAM = (
    "rules:\n"
    "  - {id: vip_rule, on: [purchase], coupon_campaign: vip_welcome, fixed: 50}\n"
    "  - {id: open_rule, on: [purchase], coupon_campaign: open_promo, fixed: 20}\n"
    "coupons:\n"
    "  - {id: vip_welcome, name: VIP, prefix: VIPWELC, segments: [vip]}\n"
    "  - {id: open_promo, name: Open, prefix: OPEN}\n"
)


@pytest.mark.parametrize(
    ("member", "status", "vip_note"),
    [
        (MemberState("dan"), CouponStatus.issued, "coupon_not_for_member"),
        (MemberState("vic", segments=frozenset({"vip"})), CouponStatus.used,
         "coupon_already_used"),
        (MemberState("vic", segments=frozenset({"vip"})), CouponStatus.issued, None),
    ],
)  # fmt: skip
def test_other_campaigns_rules_say_other_campaign(
    member: MemberState, status: CouponStatus, vip_note: str | None
) -> None:
    code = make_code("VIPWELC", "7KQ2M9XD4HRT")
    decision = Evaluator(program(PROGRAM)).evaluate(
        purchase("20", coupon=code), member, ProgramState(), status
    )
    lines = {t.rule: t.as_dict() for t in decision.trace}
    assert lines["open_rule"] == {
        "rule": "open_rule", "outcome": "coupon", "points": 0, "note": "other campaign"
    }  # fmt: skip
    if vip_note is None:
        assert lines["vip_rule"]["points"] == 50
    else:
        assert lines["vip_rule"] == {
            "rule": "vip_rule", "outcome": "coupon", "points": 0, "note": vip_note
        }  # fmt: skip


def test_a_code_of_no_campaign_is_refused_on_every_coupon_rule() -> None:
    code = make_code("WINTER", "7KQ2M9XD4HRT")
    decision = Evaluator(program(PROGRAM)).evaluate(
        purchase("20", coupon=code), MemberState("dan"), ProgramState(), CouponStatus.not_found
    )
    assert [(t.rule, t.note) for t in decision.trace if t.rule.endswith("_rule")] == [
        ("vip_rule", "coupon_unknown"),
        ("open_rule", "coupon_unknown"),
    ]
