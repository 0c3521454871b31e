"""Golden decision traces for the example program (``fidelite program init``).

Every number is worked out by hand from the example file; the comments show how.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fidelite.engine import CouponStatus, Evaluator, Event, MemberState
from fidelite.engine.coupon import make_code
from fidelite.program import load_program

EXAMPLE = Path(__file__).parents[2] / "src" / "fidelite" / "program" / "example.yaml"

NON_PURCHASE_RULES = [
    ("signup_bonus", "event_type", 0),
    ("birthday", "event_type", 0),
    ("profile_completed", "event_type", 0),
    ("review", "event_type", 0),
    ("social_share", "event_type", 0),
    ("workshop_attended", "event_type", 0),
]


@pytest.fixture(scope="module")
def engine() -> Evaluator:
    return Evaluator(load_program(EXAMPLE))


def trace(decision_trace: list) -> list[tuple[str, str, int]]:  # type: ignore[type-arg]
    return [(t.rule, t.outcome.value, t.points) for t in decision_trace]


def test_golden_web_basket_on_tuesday_afternoon(engine: Evaluator) -> None:
    event = Event.model_validate(
        {
            "id": "g1",
            "type": "purchase",
            "member": "m1",
            "at": "2026-11-24T15:30:00+01:00",  # Tuesday, 15:30 in Paris: happy hour
            "amount": "123.45",
            "channel": "web",
            "items": [
                {"sku": "B1", "category": "beans", "quantity": 2, "price": "10.00"},
                {"sku": "P1", "category": "pastry", "quantity": 3, "price": "2.50"},
            ],
        }
    )
    state = MemberState("m1", tier="silver", segments=frozenset({"regulars"}))
    decision = engine.evaluate(event, state)
    assert trace(decision.trace) == [
        ("base_purchase", "matched", 123),  # floor(123.45)
        ("coffee_beans", "matched", 10),  # 2 bags x 5
        ("pastry_points", "matched", 15),  # 3 x 2.50 = 7.50 EUR x 2
        ("big_basket", "matched", 50),  # web and >= 100 EUR
        ("happy_hour", "matched", 198),  # (2 - 1) x (123 + 10 + 15 + 50), under the 200 cap
        ("spring_campaign", "outside_window", 0),  # starts 2027-03-20
        ("vip_welcome_coupon", "coupon", 0),  # no coupon on the event
        ("regulars_star", "matched", 1),  # stars, not multiplied by tier
        *NON_PURCHASE_RULES,
        ("tier:silver", "matched", 99),  # floor(0.25 x 396)
    ]
    assert [(e.currency, e.points) for e in decision.earnings] == [("points", 495), ("stars", 1)]
    points = decision.earnings[0]
    # 12 months after 24 Nov 2026, pushed to the end of that month (Paris time).
    assert points.expires_at == datetime.fromisoformat("2027-12-01T00:00:00+01:00")
    assert points.pending_until == datetime.fromisoformat("2026-12-08T15:30:00+01:00")
    assert [(u.rule, u.period, u.points) for u in decision.usage] == [("big_basket", "2026-11", 50)]


def test_golden_spring_campaign_with_coupon_stops_later_rules(engine: Evaluator) -> None:
    code = make_code("VIPWELC", "7KQ2M9XD4HRT")
    event = Event.model_validate(
        {
            "id": "g2",
            "type": "purchase",
            "member": "m2",
            "at": "2027-04-03T11:00:00+02:00",  # Saturday morning, in the spring campaign
            "amount": "20.50",
            "channel": "store",
            "coupon": code.lower(),  # typed in lower case at the till
        }
    )
    state = MemberState("m2", tier="bronze", segments=frozenset({"vip", "regulars"}))
    decision = engine.evaluate(event, state, coupon_status=CouponStatus.issued)
    assert trace(decision.trace) == [
        ("base_purchase", "matched", 20),  # floor(20.50)
        ("coffee_beans", "no_points", 0),  # no basket lines
        ("pastry_points", "no_points", 0),
        ("big_basket", "condition_false", 0),  # in store, under 100 EUR
        ("happy_hour", "condition_false", 0),  # Saturday
        ("spring_campaign", "matched", 62),  # 20.50 x 3 = 61.5, half up
        ("vip_welcome_coupon", "matched", 200),
        ("regulars_star", "stopped", 0),  # the coupon rule stops evaluation
        *NON_PURCHASE_RULES,
    ]
    assert decision.points("points") == 282
    assert decision.budget_spent == {"spring_campaign": 62}
    assert decision.coupon is not None
    assert (decision.coupon.code, decision.coupon.campaign, decision.coupon.accepted) == (
        code,
        "vip_welcome",
        True,
    )


def test_golden_used_coupon_is_refused(engine: Evaluator) -> None:
    code = make_code("VIPWELC", "7KQ2M9XD4HRT")
    event = Event.model_validate(
        {
            "id": "g3",
            "type": "purchase",
            "member": "m2",
            "at": "2026-12-05T11:00:00+01:00",
            "amount": Decimal("10"),
            "coupon": code,
        }
    )
    state = MemberState("m2", segments=frozenset({"vip"}))
    decision = engine.evaluate(event, state, coupon_status=CouponStatus.used)
    assert decision.coupon is not None
    assert (decision.coupon.accepted, decision.coupon.reason) == (False, "coupon_already_used")
    assert trace(decision.trace)[6] == ("vip_welcome_coupon", "coupon", 0)
    assert decision.points("points") == 10


def test_golden_review_and_birthday_events(engine: Evaluator) -> None:
    review = Event.model_validate(
        {
            "id": "g4",
            "type": "review",
            "member": "m3",
            "at": "2026-11-23T09:00:00+01:00",
            "attributes": {"stars": 4},
        }
    )
    state = MemberState("m3", tier="gold", rule_points={("review", "2026-11"): 50})
    decision = engine.evaluate(review, state)
    # 20 points capped at the 10 left of the 60 monthly cap, then gold x1.5: +5.
    assert decision.points("points") == 15
    assert decision.earnings[0].pending_until is None  # only purchases are pending
    birthday = Event.model_validate(
        {"id": "g5", "type": "birthday", "member": "m3", "at": "2026-05-02T08:00:00+02:00"}
    )
    born = MemberState("m3", birth_date=datetime(1985, 5, 2).date())
    assert engine.evaluate(birthday, born).points("points") == 250
