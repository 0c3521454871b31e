"""What the evaluator works out once per program gives what it computed per event.

Decisions and earnings built without their dataclass ``__init__``, the line of a rule
whose only effect is ``fixed`` worked out when the program loads, and the lines of
rules that do not handle an event type appended as one group: each is checked here
against what the plain construction or the per-event path gives.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from fidelite.engine import CouponStatus, Decision, Earning, Outcome, RuleTrace, Usage
from fidelite.engine.coupon import make_code
from fidelite.engine.decision import CouponUse, new_decision, new_earning
from tests.engine.helpers import evaluator, member, purchase

AT = datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_new_earning_is_the_earning_the_class_builds() -> None:
    built = new_earning("points", 12, AT, None)
    plain = Earning("points", 12, AT, None)
    assert built == plain
    assert repr(built) == repr(plain)
    assert vars(built) == vars(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.points = 13  # type: ignore[misc]
    assert built.points == 12


def test_new_decision_is_the_decision_the_class_builds() -> None:
    arguments = (
        "e1",
        "m1",
        AT,
        [Earning("points", 5, None, AT)],
        [RuleTrace("r", Outcome.matched, 5, "points")],
        [Usage("r", "2026-11", 5)],
        {"r": 5},
        CouponUse("VIPWELC-X", "vip", True),
    )
    built, plain = new_decision(*arguments), Decision(*arguments)
    assert built == plain
    assert repr(built) == repr(plain)
    assert built.as_dict() == plain.as_dict()
    assert list(vars(built)) == [f.name for f in dataclasses.fields(Decision)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.coupon = None  # type: ignore[misc]


def test_fixed_rule_line_is_the_same_on_every_event_capped_per_event() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: five, on: [purchase], fixed: 5, cap_per_event: 3}\n"
        "  - {id: two, on: [purchase], fixed: 2}\n"
    )
    for event_id in ("e1", "e2"):
        decision = engine.evaluate(purchase("10", id=event_id), member())
        assert decision.trace == [
            RuleTrace("five", Outcome.cap_per_event, 3, "points", "5 capped at 3 per event"),
            RuleTrace("two", Outcome.matched, 2, "points"),
        ]
        assert [(e.currency, e.points) for e in decision.earnings] == [("points", 5)]


def test_fixed_rule_of_a_coupon_campaign_uses_the_code() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: welcome, on: [purchase], coupon_campaign: vip, fixed: 200, stop: true}\n"
        "  - {id: after, on: [purchase], fixed: 1}\n"
        "coupons:\n"
        "  - {id: vip, name: VIP, prefix: VIPWELC}\n"
    )
    code = make_code("VIPWELC", "7KQ2M9XD4HRT")
    decision = engine.evaluate(purchase("10", coupon=code), member(), None, CouponStatus.issued)
    assert decision.coupon == CouponUse(code, "vip", True, "coupon_accepted")
    assert [(t.rule, t.outcome, t.points, t.note) for t in decision.trace] == [
        ("welcome", Outcome.matched, 200, ""),
        ("after", Outcome.stopped, 0, "by welcome"),
    ]
    assert [(e.currency, e.points) for e in decision.earnings] == [("points", 200)]


def test_rules_of_other_event_types_keep_their_place_around_a_stop() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: a, on: [signup], fixed: 1, priority: 1}\n"
        "  - {id: b, on: [purchase], fixed: 2, stop: true, priority: 2}\n"
        "  - {id: c, on: [signup], fixed: 3, priority: 3}\n"
        "  - {id: d, on: [review], fixed: 4, priority: 3}\n"
        "  - {id: e, on: [purchase], fixed: 5, priority: 4}\n"
        "  - {id: f, on: [review], fixed: 6, priority: 5}\n"
    )
    decision = engine.evaluate(purchase("10"), member())
    assert [(t.rule, t.outcome.value, t.points) for t in decision.trace] == [
        ("a", "event_type", 0),
        ("b", "matched", 2),
        ("c", "event_type", 0),
        ("d", "event_type", 0),
        ("e", "stopped", 0),
        ("f", "event_type", 0),
    ]
