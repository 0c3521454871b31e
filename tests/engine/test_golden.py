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
from fidelite.engine.rewards import RedemptionRejection, check_redemption
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
        ("house_blend", "no_points", 0),  # no HOUSE-BLEND line
        ("premium_items", "no_points", 0),  # no item of 30 EUR or more
        ("station_kiosks", "condition_false", 0),  # no store on the event
        ("big_basket", "matched", 50),  # web and >= 100 EUR
        ("happy_hour", "matched", 198),  # (2 - 1) x (123 + 10 + 15 + 50), under the 200 cap
        ("coffee_day", "outside_window", 0),  # 1 October 2027 only
        ("spring_campaign", "outside_window", 0),  # starts 2027-03-20
        ("first_purchase", "condition_false", 0),  # join date unknown: days_since_joined -1000000
        ("gold_early_bird", "condition_false", 0),  # silver, and 15:30
        ("student_bonus", "condition_false", 0),  # no student attribute
        ("flyer_code", "condition_false", 0),  # no code on the event
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
        ("house_blend", "no_points", 0),
        ("premium_items", "no_points", 0),
        ("station_kiosks", "condition_false", 0),  # no store on the event
        ("big_basket", "condition_false", 0),  # in store, under 100 EUR
        ("happy_hour", "condition_false", 0),  # Saturday
        ("coffee_day", "outside_window", 0),
        ("spring_campaign", "matched", 62),  # 20.50 x 3 = 61.5, half up
        ("first_purchase", "condition_false", 0),  # join date unknown
        ("gold_early_bird", "condition_false", 0),  # bronze
        ("student_bonus", "condition_false", 0),
        ("flyer_code", "condition_false", 0),  # a VIPWELC code, not HELLO30
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
    assert ("vip_welcome_coupon", "coupon", 0) in trace(decision.trace)
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


def test_golden_coffee_day_at_a_station_kiosk(engine: Evaluator) -> None:
    event = Event.model_validate(
        {
            "id": "g6",
            "type": "purchase",
            "member": "m4",
            "at": "2027-10-01T09:15:00+02:00",  # Friday morning: Coffee Day, no happy hour
            "amount": "57.80",
            "channel": "store",
            "store": "lyon-part-dieu",
            "items": [
                {"sku": "HOUSE-BLEND", "category": "beans", "quantity": 2, "price": "8.90"},
                {"sku": "GRINDER-1", "category": "equipment", "quantity": 1, "price": "34.90"},
                {"sku": "P1", "category": "pastry", "quantity": 2, "price": "2.55"},
            ],
        }
    )
    state = MemberState(
        "m4", tier="gold", purchases=5, joined_at=datetime.fromisoformat("2026-01-15T09:00+01:00")
    )
    decision = engine.evaluate(event, state)
    assert trace(decision.trace) == [
        ("base_purchase", "matched", 57),  # floor(57.80)
        ("coffee_beans", "matched", 10),  # 2 bags x 5
        ("pastry_points", "matched", 10),  # 2 x 2.55 = 5.10 EUR x 2 = 10.2, floor
        ("house_blend", "matched", 6),  # 2 bags on one line: 2 x 3
        ("premium_items", "matched", 4),  # the 34.90 grinder: 3.49, rounded up
        ("station_kiosks", "matched", 28),  # 57.80 / 2.00 = 28.9, floor
        ("big_basket", "condition_false", 0),  # in store, under 100 EUR
        ("happy_hour", "condition_false", 0),  # 09:15
        ("coffee_day", "matched", 230),  # (3 - 1) x (57 + 10 + 10 + 6 + 4 + 28 = 115)
        ("spring_campaign", "outside_window", 0),
        ("first_purchase", "condition_false", 0),  # 5 purchases before
        ("gold_early_bird", "matched", 20),  # gold, before 11:00
        ("student_bonus", "condition_false", 0),
        ("flyer_code", "condition_false", 0),
        ("vip_welcome_coupon", "coupon", 0),
        ("regulars_star", "segment", 0),  # not in the regulars segment
        *NON_PURCHASE_RULES,
        ("tier:gold", "matched", 182),  # floor(0.5 x (115 + 230 + 20 = 365))
    ]
    assert [(e.currency, e.points) for e in decision.earnings] == [("points", 547)]
    assert [(u.rule, u.period, u.points) for u in decision.usage] == [
        ("gold_early_bird", "2027-10-01", 20)
    ]
    # A second early visit that day: the daily cap of 20 is used up.
    again = engine.evaluate(
        event.model_copy(update={"id": "g7"}),
        MemberState(
            "m4", tier="gold", purchases=6, rule_points={("gold_early_bird", "2027-10-01"): 20}
        ),
    )
    assert ("gold_early_bird", "cap_per_member", 0) in trace(again.trace)
    assert again.points("points") == 115 + 230 + 172  # floor(0.5 x 345)
    # That afternoon, happy hour doubles first and Coffee Day triples what it gave too.
    afternoon = Event.model_validate(
        {"id": "g9", "type": "purchase", "member": "m6", "at": "2027-10-01T15:00:00+02:00",
         "amount": "10.00"}
    )  # fmt: skip
    decision = engine.evaluate(afternoon, MemberState("m6"))
    assert [line for line in trace(decision.trace) if line[2]] == [
        ("base_purchase", "matched", 10),
        ("happy_hour", "matched", 10),  # (2 - 1) x 10
        ("coffee_day", "matched", 40),  # (3 - 1) x (10 + 10)
    ]


def test_golden_first_purchase_of_a_student_with_the_flyer_code(engine: Evaluator) -> None:
    event = Event.model_validate(
        {
            "id": "g8",
            "type": "purchase",
            "member": "m5",
            "at": "2026-11-28T10:00:00+01:00",  # Saturday
            "amount": "25.00",
            "store": "paris-opera",  # not a station kiosk
            "coupon": "HELLO30",
        }
    )
    joined = datetime.fromisoformat("2026-10-29T10:00:00+01:00")  # 30 days before
    state = MemberState("m5", tier="bronze", attributes={"student": True}, joined_at=joined)
    decision = engine.evaluate(event, state)
    assert trace(decision.trace) == [
        ("base_purchase", "matched", 25),
        ("coffee_beans", "no_points", 0),
        ("pastry_points", "no_points", 0),
        ("house_blend", "no_points", 0),
        ("premium_items", "no_points", 0),
        ("station_kiosks", "condition_false", 0),
        ("big_basket", "condition_false", 0),
        ("happy_hour", "condition_false", 0),
        ("coffee_day", "outside_window", 0),
        ("spring_campaign", "outside_window", 0),
        ("first_purchase", "matched", 100),  # no purchase yet, joined 30 days ago
        ("gold_early_bird", "condition_false", 0),
        ("student_bonus", "matched", 2),  # 25.00 x 0.1 = 2.5, half to even: 2 (half up: 3)
        ("flyer_code", "matched", 30),
        ("vip_welcome_coupon", "coupon", 0),  # HELLO30 is no coupon code
        ("regulars_star", "segment", 0),
        *NON_PURCHASE_RULES,
    ]  # bronze has no earn multiplier: no tier line
    assert decision.points("points") == 25 + 100 + 2 + 30
    assert [(u.rule, u.period, u.points) for u in decision.usage] == [("flyer_code", "ever", 30)]
    assert decision.coupon is not None
    assert (decision.coupon.accepted, decision.coupon.reason) == (False, "coupon_invalid")
    # 35 EUR: 3.5, half to even: 4.
    dearer = engine.evaluate(event.model_copy(update={"amount": Decimal("35.00")}), state)
    assert ("student_bonus", "matched", 4) in trace(dearer.trace)
    # Joined 31 days before, or a purchase already made, or a student attribute that is
    # not true: no first-purchase or student points; the flyer code counts once per member.
    later = MemberState(
        "m5",
        purchases=1,
        attributes={"student": "yes"},
        joined_at=datetime.fromisoformat("2026-10-28T10:00:00+01:00"),
        rule_points={("flyer_code", "ever"): 30},
    )
    outcomes = {
        rule: (outcome, points)
        for rule, outcome, points in trace(engine.evaluate(event, later).trace)
    }
    assert outcomes["first_purchase"] == ("condition_false", 0)
    assert outcomes["student_bonus"] == ("condition_false", 0)
    assert outcomes["flyer_code"] == ("cap_per_member", 0)
    late = MemberState("m5", joined_at=datetime.fromisoformat("2026-10-28T10:00:00+01:00"))
    assert ("first_purchase", "condition_false", 0) in trace(engine.evaluate(event, late).trace)


@pytest.mark.parametrize(
    ("at", "rejection"),
    [
        ("2026-11-30T23:59:59+01:00", RedemptionRejection.reward_not_yet_available),
        ("2026-12-01T00:00:00+01:00", None),  # valid_from is inclusive
        ("2026-12-31T23:59:59+01:00", None),
        ("2027-01-01T00:00:00+01:00", RedemptionRejection.reward_expired),  # valid_until is not
    ],
)
def test_golden_christmas_mug_is_redeemable_in_december_only(
    at: str, rejection: RedemptionRejection | None
) -> None:
    found = check_redemption(
        load_program(EXAMPLE),
        "christmas_mug",
        tier="bronze",
        available_points=1200,
        redeemed_total=0,
        redeemed_by_member=0,
        at=datetime.fromisoformat(at),
    )
    assert found is rejection
