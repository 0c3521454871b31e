"""The engine's fast paths decide exactly what CEL alone decides, trace included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fidelite.engine import CouponStatus, Evaluator, Event, MemberState, ProgramState
from fidelite.engine.coupon import make_code
from fidelite.engine.expiry import ExpiryDates, expires_at
from fidelite.engine.rounding import round_points
from fidelite.program import load_program
from fidelite.program.policy import ExpiryPolicy
from tests.engine.helpers import evaluator, member, purchase

EXAMPLE = load_program(Path(__file__).parents[2] / "src" / "fidelite" / "program" / "example.yaml")
FAST = Evaluator(EXAMPLE)
CEL_ONLY = Evaluator(EXAMPLE, native=False)
COUPON = make_code("VIPWELC", "7KQ2M9XD4HRT")
START = datetime(2026, 10, 1, tzinfo=UTC)

items = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.sampled_from(["B1", "P1", "T1", "HOUSE-BLEND"]),
            "category": st.sampled_from(["beans", "pastry", "tea", ""]),
            "quantity": st.integers(1, 4),
            "price": st.decimals(min_value=0, max_value=50, places=2),
        }
    ),
    max_size=4,
)


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(["purchase"] * 4 + ["review", "birthday", "signup", "social"]))
    minutes = draw(st.integers(0, 60 * 24 * 400))  # October 2026 to late 2027: spring window
    data: dict[str, Any] = {
        "id": "e",
        "type": kind,
        "member": "m",
        "at": START + timedelta(minutes=minutes),
    }
    if kind == "purchase":
        data["amount"] = draw(st.decimals(min_value=0, max_value=400, places=2))
        data["channel"] = draw(st.sampled_from(["web", "store", ""]))
        data["items"] = draw(items)
        data["coupon"] = draw(st.sampled_from([None, COUPON, "NOT-A-CODE", "HELLO30"]))
        data["store"] = draw(st.sampled_from(["", "lyon-part-dieu", "paris-opera"]))
    if kind == "review":
        data["attributes"] = draw(
            st.sampled_from([{}, {"stars": 4}, {"stars": 0}, {"stars": "five"}])
        )
    return Event.model_validate(data)


members = st.builds(
    MemberState,
    ref=st.just("m"),
    tier=st.sampled_from([None, "bronze", "silver", "gold"]),
    segments=st.frozensets(st.sampled_from(["regulars", "vip"])),
    birth_date=st.sampled_from([None, date(1990, 5, 2), date(1985, 11, 24)]),
    attributes=st.sampled_from([{}, {"student": True}, {"student": "yes"}]),
    purchases=st.sampled_from([0, 3]),
    joined_at=st.sampled_from([None, START, START - timedelta(days=400)]),
    rule_points=st.sampled_from([{}, {("big_basket", "2026-11"): 50}]),
)


@settings(max_examples=300, deadline=None)
@given(
    event=events(),
    state=members,
    budget_used=st.sampled_from([0, 99_990, 100_000]),
    status=st.sampled_from(list(CouponStatus)),
)
def test_fast_paths_decide_as_cel_alone(
    event: Event, state: MemberState, budget_used: int, status: CouponStatus
) -> None:
    program_state = ProgramState({"spring_campaign": budget_used})
    fast = FAST.evaluate(event, state, program_state, status)
    assert fast == CEL_ONLY.evaluate(event, state, program_state, status)
    assert fast.as_dict() == CEL_ONLY.evaluate(event, state, program_state, status).as_dict()


def test_example_program_runs_every_expression_as_python_but_those_reading_attributes() -> None:
    assert FAST.cel_expressions() == [
        "has(member.attributes.student) && member.attributes.student == true",
        "has(event.attributes.stars) && event.attributes.stars >= 1",
    ]
    assert len(CEL_ONLY.cel_expressions()) == 15


def test_rule_mixing_python_and_cel_conditions_reads_both() -> None:
    engine = evaluator(
        "rules:\n"
        "  - id: a\n    on: [purchase]\n    fixed: 5\n"
        '    when: event.channel == "web"\n'
        "  - id: b\n    on: [purchase]\n    fixed: 7\n"
        "    when: has(event.attributes.vip) && event.attributes.vip\n"
        "  - id: c\n    on: [purchase]\n"
        "    per_item: {when: 'item.sku.startsWith(\"B\")', points_per_unit: 3}\n"
    )
    assert engine.cel_expressions() == [
        "has(event.attributes.vip) && event.attributes.vip",
        'item.sku.startsWith("B")',
    ]
    event = purchase(
        "10",
        channel="web",
        attributes={"vip": True},
        items=[
            {"sku": "B1", "quantity": 2, "price": "1"},
            {"sku": "C1", "quantity": 5, "price": "1"},
        ],
    )
    decision = engine.evaluate(event, member())
    assert [(t.rule, t.outcome.value, t.points) for t in decision.trace] == [
        ("a", "matched", 5),
        ("b", "matched", 7),
        ("c", "matched", 6),  # 2 units of the B line x 3
    ]


def test_trace_lines_repeat_as_equal_values() -> None:
    first = FAST.evaluate(purchase("12.00", id="x1"), member())
    second = FAST.evaluate(purchase("12.00", id="x2"), member())
    assert first.trace == second.trace
    assert [t.as_dict() for t in first.trace][:1] == [
        {"rule": "base_purchase", "outcome": "matched", "points": 12, "currency": "points"}
    ]


def test_expiry_dates_by_month_match_expires_at() -> None:
    zone = ZoneInfo("Europe/Paris")
    policy = ExpiryPolicy.model_validate(
        {"mode": "after_earning", "months": 12, "rounding": "end_of_month"}
    )
    dates = ExpiryDates(policy, zone)
    # Earned 15 March 2026 in Paris: spendable all of March 2027.
    earned = datetime(2026, 3, 15, 12, tzinfo=zone)
    assert dates.expires_at(earned) == datetime.fromisoformat("2027-04-01T00:00:00+02:00")
    # Same month, other days (and a DST change on 29 March): the same date.
    assert dates.expires_at(datetime(2026, 3, 31, 23, 30, tzinfo=zone)) == datetime(
        2027, 4, 1, tzinfo=zone
    )
    # 31 March 23:30 Paris is 21:30 UTC: still March locally.
    late = datetime(2026, 3, 31, 21, 30, tzinfo=UTC)
    assert dates.expires_at(late) == expires_at(policy, late, zone)


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.integers(0, 60 * 24 * 800),
    rounding=st.sampled_from(["none", "end_of_month", "end_of_year"]),
    months=st.integers(1, 36),
)
def test_expiry_dates_equal_expires_at_for_any_time(
    minutes: int, rounding: str, months: int
) -> None:
    zone = ZoneInfo("Europe/Paris")
    policy = ExpiryPolicy.model_validate(
        {"mode": "after_earning", "months": months, "rounding": rounding}
    )
    dates = ExpiryDates(policy, zone)
    at = START + timedelta(minutes=minutes)
    assert dates.expires_at(at) == expires_at(policy, at, zone)
    assert dates.expires_at(at, at.astimezone(zone)) == expires_at(policy, at, zone)


def test_per_amount_rule_rounds_the_exact_decimal_amount() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: a, on: [purchase], per_amount: {points: 3, per: 2.00}, rounding: half_up}\n"
    )
    # 7.00 / 2.00 x 3 = 10.5, half up: 11.
    assert engine.evaluate(purchase("7.00"), member()).points("points") == 11


def test_round_points_floor_and_ceil_match_quantize() -> None:
    assert round_points(Decimal("2.5"), ROUND_FLOOR) == 2
    assert round_points(Decimal("2.5"), ROUND_CEILING) == 3
    assert round_points(Decimal("-2.5"), ROUND_FLOOR) == -3
    assert round_points(Decimal("2.5"), ROUND_HALF_EVEN) == 2
    assert round_points(Decimal("9999999999999999999999999999.5"), ROUND_FLOOR) == 10**28 - 1


def test_round_points_too_large_for_quantize_fails_as_quantize_does() -> None:
    with pytest.raises(InvalidOperation):
        Decimal("1E+30").quantize(Decimal(1), rounding=ROUND_FLOOR)
    with pytest.raises(InvalidOperation):
        round_points(Decimal("1E+30"), ROUND_FLOOR)
