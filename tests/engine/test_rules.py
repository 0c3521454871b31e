"""Earning rules: each effect, gate, cap and budget, with hand-computed points."""

from __future__ import annotations

from datetime import datetime

import pytest

from fidelite.engine import MemberState, Outcome, ProgramState
from fidelite.ledger.validation import MAX_POINTS
from tests.engine.helpers import action, evaluator, member, purchase


def outcomes(decision_trace: list) -> list[tuple[str, str, int]]:  # type: ignore[type-arg]
    return [(t.rule, t.outcome.value, t.points) for t in decision_trace]


@pytest.mark.parametrize(
    ("rounding", "amount", "points"),
    [
        ("floor", "19.99", 19),
        ("ceil", "19.01", 20),
        ("half_up", "19.50", 20),
        ("half_up", "19.49", 19),
        ("half_even", "18.50", 18),
        ("half_even", "19.50", 20),
    ],
)
def test_per_amount_rounds_with_rule_rounding(rounding: str, amount: str, points: int) -> None:
    engine = evaluator(
        f"rules:\n  - id: base\n    on: [purchase]\n    per_amount: {{points: 1}}\n"
        f"    rounding: {rounding}\n"
    )
    decision = engine.evaluate(purchase(amount), member())
    assert decision.points("points") == points


def test_per_amount_gives_points_per_money_unit() -> None:
    # 3 points per 2 EUR on 25.00 EUR: 25 / 2 x 3 = 37.5 -> floor 37.
    engine = evaluator(
        "rules:\n  - id: base\n    on: [purchase]\n    per_amount: {points: 3, per: 2}\n"
    )
    assert engine.evaluate(purchase("25.00"), member()).points("points") == 37


@pytest.mark.parametrize(
    ("points", "per", "amount", "expected"),
    [
        # The figures of the report: each is an exact product, money * points / per.
        ("3", "1.50", "21.5", {"floor": 43, "ceil": 43, "half_up": 43, "half_even": 43}),
        ("3", "1.50", "25", {"floor": 50, "ceil": 50, "half_up": 50, "half_even": 50}),
        ("3", "1.50", "46", {"floor": 92, "ceil": 92, "half_up": 92, "half_even": 92}),
        ("3", "3", "1", {"floor": 1, "ceil": 1, "half_up": 1, "half_even": 1}),
        ("3", "3", "10", {"floor": 10, "ceil": 10, "half_up": 10, "half_even": 10}),
        # 1.5 points per 3 EUR on 1 EUR is exactly 0.5; on 3 EUR exactly 1.5.
        ("1.5", "3", "1", {"floor": 0, "ceil": 1, "half_up": 1, "half_even": 0}),
        ("1.5", "3", "3", {"floor": 1, "ceil": 2, "half_up": 2, "half_even": 2}),
        # A third that is not whole: 1 point per 3 EUR on 10 EUR is 3.33...
        ("1", "3", "10", {"floor": 3, "ceil": 4, "half_up": 3, "half_even": 3}),
        ("2", "0.3", "1", {"floor": 6, "ceil": 7, "half_up": 7, "half_even": 7}),
    ],
)
@pytest.mark.parametrize("rounding", ["floor", "ceil", "half_up", "half_even"])
def test_per_amount_and_per_item_points_are_exact_products(
    points: str, per: str, amount: str, expected: dict[str, int], rounding: str
) -> None:
    engine = evaluator(
        "rules:\n"
        f"  - {{id: total, on: [purchase], rounding: {rounding},"
        f" per_amount: {{points: {points}, per: {per}}}}}\n"
        f"  - {{id: lines, on: [purchase], rounding: {rounding},"
        f" per_item: {{points_per_amount: {points}, per: {per}}}}}\n"
    )
    items = [{"sku": "A", "category": "c", "quantity": 1, "price": amount}]
    decision = engine.evaluate(purchase(amount, items=items), member())
    by_rule = {line.rule: line.points for line in decision.trace}
    assert by_rule == {"total": expected[rounding], "lines": expected[rounding]}


def test_per_item_sums_the_lines_before_rounding() -> None:
    # Three lines of 1 EUR at 1 point per 3 EUR: exactly 1 point, not 3 x 0.333...3.
    engine = evaluator(
        "rules:\n  - {id: lines, on: [purchase], per_item: {points_per_amount: 1, per: 3}}\n"
    )
    items = [{"sku": f"A{i}", "category": "c", "quantity": 1, "price": "1"} for i in range(3)]
    assert engine.evaluate(purchase("3", items=items), member()).points("points") == 1


def test_per_item_counts_matching_lines_only() -> None:
    engine = evaluator(
        "rules:\n  - id: beans\n    on: [purchase]\n    per_item:\n"
        '      when: item.category == "beans" && item.price >= 5.0\n'
        "      points_per_unit: 4\n      points_per_amount: 1\n      per: 2\n"
    )
    items = [
        {"sku": "B1", "category": "beans", "quantity": 3, "price": "6.00"},  # 12 + 18/2 = 21
        {"sku": "B2", "category": "beans", "quantity": 1, "price": "4.00"},  # too cheap
        {"sku": "T1", "category": "tea", "quantity": 2, "price": "9.00"},  # other category
    ]
    decision = engine.evaluate(purchase("40.00", items=items), member())
    assert decision.points("points") == 21


def test_fixed_and_formula_add_up() -> None:
    # fixed 10 + formula 1.15 * 100 = 115 (not 114.999... from binary floating point).
    engine = evaluator(
        "rules:\n  - id: r\n    on: [purchase]\n    fixed: 10\n    formula: event.amount * 100.0\n"
    )
    assert engine.evaluate(purchase("1.15"), member()).points("points") == 125


@pytest.mark.parametrize(
    ("formula", "note"),
    [
        (
            "event.amount / double(size(event.items))",  # no items: 10.0 / 0.0
            "ValueError: formula gave inf, not a number of points (a division by zero?)",
        ),
        (
            "-event.amount / 0.0",
            "ValueError: formula gave -inf, not a number of points (a division by zero?)",
        ),
        (
            "0.0 / (event.amount - 10.0)",
            "ValueError: formula gave nan, not a number of points (a division by zero?)",
        ),
        (
            "event.amount / 10.0 * 1e30",
            "ValueError: formula gave 1e+30, more than the largest award (1000000000000000 points)",
        ),
        (
            "int(event.amount) * 1000000000000000",
            "ValueError: formula gave 10000000000000000, more than the largest award"
            " (1000000000000000 points)",
        ),
        (
            "event.amount / 10.0 * -1e30",
            "ValueError: formula gave -1e+30, less than minus the largest award"
            " (-1000000000000000 points)",
        ),
    ],
)
def test_formula_out_of_range_is_traced_with_its_value(formula: str, note: str) -> None:
    engine = evaluator(f"rules:\n  - {{id: r, on: [purchase], formula: '{formula}'}}\n")
    decision = engine.evaluate(purchase("10"), member())
    (line,) = decision.trace
    assert (line.rule, line.outcome, line.points, line.note) == (
        "r",
        Outcome.condition_error,
        0,
        note,
    )


def test_formula_may_give_the_largest_award() -> None:
    engine = evaluator(
        "rules:\n  - {id: r, on: [purchase], formula: 'event.amount * 100000000000000.0'}\n"
    )
    assert engine.evaluate(purchase("10"), member()).points("points") == MAX_POINTS == 10**15


BEYOND = "came to 2000000000000000 points, more than the largest award (1000000000000000 points)"


@pytest.mark.parametrize(
    "effect",
    [
        "per_amount: {points: 1000000}",
        "per_item: {points_per_amount: 1000000}",
        "per_item: {points_per_unit: 1000000000000000}\n    fixed: 1",  # 2 units
    ],
)
def test_an_award_beyond_the_largest_gives_nothing_and_is_traced(effect: str) -> None:
    # 2,000,000,000 EUR at 1,000,000 points each: no ledger entry could hold it, so the
    # rule gives nothing (as a formula would), the event's other rules still count.
    engine = evaluator(
        f"rules:\n  - id: big\n    on: [purchase]\n    {effect}\n"
        "  - {id: base, on: [purchase], fixed: 5}\n"
    )
    items = [{"sku": "A", "category": "c", "quantity": 2, "price": "1000000000"}]
    decision = engine.evaluate(purchase("2000000000", items=items), member())
    traced = [(t.rule, t.outcome, t.points, t.note) for t in decision.trace]
    note = BEYOND.replace("2000000000000000", "2000000000000001") if "unit" in effect else BEYOND
    assert traced == [
        ("big", Outcome.condition_error, 0, note),
        ("base", Outcome.matched, 5, ""),
    ]
    assert decision.points("points") == 5


def test_a_capped_award_gives_its_cap_however_large_before_the_cap() -> None:
    # the largest award bounds what a rule gives, after its caps: not what it computes
    engine = evaluator(
        "rules:\n  - {id: big, on: [purchase], per_amount: {points: 1000000}, cap_per_event: 100}\n"
    )
    decision = engine.evaluate(purchase("2000000000"), member())
    assert [(t.rule, t.outcome, t.points) for t in decision.trace] == [
        ("big", Outcome.cap_per_event, 100)
    ]
    assert decision.points("points") == 100


def test_a_rule_taking_the_events_points_past_the_largest_gives_nothing() -> None:
    # each rule within the largest award, their sum beyond it: the later rule is turned
    # away, so the event can still be posted (as simulate shows it)
    engine = evaluator(
        "  - {id: stars, name: Stars, value: 0.1}\n"  # a second currency, after HEAD's
        "rules:\n  - {id: most, on: [purchase], fixed: 1000000000000000}\n"
        "  - {id: more, on: [purchase], fixed: 10}\n"
        "  - {id: extra, on: [purchase], per_amount: {points: 1}, currency: stars}\n"
    )
    decision = engine.evaluate(purchase("10"), member())
    assert [(t.rule, t.outcome, t.points, t.note) for t in decision.trace] == [
        ("most", Outcome.matched, MAX_POINTS, ""),
        ("more", Outcome.condition_error, 0, "came to 10 points, which with the "
         "1000000000000000 points of the rules before it is more than the largest award "
         "(1000000000000000 points)"),
        ("extra", Outcome.matched, 10, ""),
    ]  # fmt: skip
    assert (decision.points("points"), decision.points("stars")) == (MAX_POINTS, 10)


def test_a_per_amount_award_of_exactly_the_largest_is_given() -> None:
    engine = evaluator("rules:\n  - {id: big, on: [purchase], per_amount: {points: 100000}}\n")
    assert engine.evaluate(purchase("10000000000"), member()).points("points") == MAX_POINTS


@pytest.mark.parametrize(
    ("extra", "note"),
    [
        ("", "formula gave -53: no points"),  # -5.25 * 10 rounded half away from zero
        (", cap_per_member: {points: 100, period: month}", "formula gave -53: no points"),
        (", budget: 1000", "formula gave -53: no points"),
        (", fixed: 20", "came to -33 with its formula: no points"),
        (", per_amount: {points: 1}", "came to -43 with its formula: no points"),
    ],
)
def test_a_negative_formula_gives_no_points_and_says_why(extra: str, note: str) -> None:
    """A rule never takes points back: a formula that comes to less than 0 gives 0,
    and its trace line says what the formula gave (it used to say nothing)."""
    engine = evaluator(
        "rules:\n  - {id: base, on: [purchase], fixed: 7}\n"
        "  - {id: r, on: [purchase], formula: '-5.25 * event.amount', rounding: half_up"
        f"{extra}}}\n"
    )
    decision = engine.evaluate(purchase("10.00"), member())
    base, line = decision.trace
    assert (line.rule, line.outcome, line.points, line.note) == ("r", Outcome.no_points, 0, note)
    assert (base.points, decision.points("points")) == (7, 7)
    assert decision.budget_spent == {}
    assert decision.usage == []


def test_a_formula_giving_zero_has_no_note() -> None:
    engine = evaluator("rules:\n  - {id: r, on: [purchase], formula: 'event.amount * 0.0'}\n")
    (line,) = engine.evaluate(purchase("10.00"), member()).trace
    assert (line.outcome, line.points, line.note) == (Outcome.no_points, 0, "")


def test_multiplier_rule_multiplies_points_of_earlier_rules() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, priority: 1}\n"
        "  - {id: bonus, on: [purchase], fixed: 5, priority: 2}\n"
        "  - {id: double, on: [purchase], multiply: 2, priority: 3}\n"
        "  - {id: late, on: [purchase], fixed: 7, priority: 4}\n"
    )
    decision = engine.evaluate(purchase("30.00"), member())
    assert outcomes(decision.trace) == [
        ("base", "matched", 30),
        ("bonus", "matched", 5),
        ("double", "matched", 35),
        ("late", "matched", 7),
    ]
    assert decision.points("points") == 77


def test_rules_run_in_priority_then_file_order_and_stop() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: c, on: [purchase], fixed: 3, priority: 20}\n"
        "  - {id: a, on: [purchase], fixed: 1, priority: 10, stop: true}\n"
        "  - {id: b, on: [purchase], fixed: 2, priority: 10}\n"
    )
    decision = engine.evaluate(purchase("1.00"), member())
    assert outcomes(decision.trace) == [
        ("a", "matched", 1),
        ("b", "stopped", 0),
        ("c", "stopped", 0),
    ]


def test_stop_is_ignored_when_condition_fails() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: a, on: [purchase], fixed: 1, stop: true, when: 'event.channel == \"web\"'}\n"
        "  - {id: b, on: [purchase], fixed: 2}\n"
    )
    decision = engine.evaluate(purchase("1.00", channel="store"), member())
    assert outcomes(decision.trace) == [("a", "condition_false", 0), ("b", "matched", 2)]


STOP_THEN_BASE = (
    "rules:\n"
    "  - id: vip\n    on: [purchase]\n    priority: 1\n    per_amount: {points: 2}\n"
    "    stop: true\n    cap_per_member: {points: 100, period: month}\n"
    "  - {id: base, on: [purchase], per_amount: {points: 1}, priority: 2}\n"
)


def test_stop_rule_that_gave_points_stops_later_rules() -> None:
    # 90 of the month's 100 already given: vip gives the 10 left, and stops base.
    engine = evaluator(STOP_THEN_BASE)
    state = member(rule_points={("vip", "2026-11"): 90})
    decision = engine.evaluate(purchase("30.00"), state)
    assert outcomes(decision.trace) == [("vip", "cap_per_member", 10), ("base", "stopped", 0)]
    assert decision.trace[1].note == "by vip"
    assert decision.points("points") == 10


def test_stop_rule_capped_to_zero_leaves_later_rules_to_run() -> None:
    # The month's cap is used up: vip gives nothing, so the base rule earns as usual
    # (as it does when a stop rule's campaign budget is spent).
    engine = evaluator(STOP_THEN_BASE)
    state = member(rule_points={("vip", "2026-11"): 100})
    decision = engine.evaluate(purchase("30.00"), state)
    assert outcomes(decision.trace) == [("vip", "cap_per_member", 0), ("base", "matched", 30)]
    assert decision.points("points") == 30
    assert decision.usage == []


def test_stop_rule_whose_effects_give_zero_does_not_stop() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: big, on: [purchase], priority: 1, stop: true,"
        " formula: 'event.amount >= 100.0 ? 50 : 0'}\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, priority: 2}\n"
    )
    small = engine.evaluate(purchase("30.00"), member())
    assert outcomes(small.trace) == [("big", "no_points", 0), ("base", "matched", 30)]
    large = engine.evaluate(purchase("120.00"), member())
    assert outcomes(large.trace) == [("big", "matched", 50), ("base", "stopped", 0)]


def test_stop_rule_with_spent_budget_does_not_stop() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: promo, on: [purchase], priority: 1, stop: true, fixed: 30, budget: 100}\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}, priority: 2}\n"
    )
    decision = engine.evaluate(purchase("12.00"), member(), ProgramState({"promo": 100}))
    assert outcomes(decision.trace) == [
        ("promo", "rule_budget_exhausted", 0),
        ("base", "matched", 12),
    ]


def test_cap_per_event_trims_points() -> None:
    engine = evaluator(
        "rules:\n  - {id: r, on: [purchase], per_amount: {points: 1}, cap_per_event: 50}\n"
    )
    decision = engine.evaluate(purchase("80.00"), member())
    (line,) = decision.trace
    assert (line.outcome, line.points, line.note) == (
        Outcome.cap_per_event,
        50,
        "80 capped at 50 per event",
    )


def test_cap_per_member_uses_points_already_given_in_period() -> None:
    engine = evaluator(
        "rules:\n  - id: r\n    on: [purchase]\n    fixed: 40\n"
        "    cap_per_member: {points: 100, period: month}\n"
    )
    state = member(rule_points={("r", "2026-11"): 70, ("r", "2026-10"): 100})
    decision = engine.evaluate(purchase("1.00"), state)
    assert decision.points("points") == 30
    assert decision.trace[0].outcome is Outcome.cap_per_member
    assert [(u.rule, u.period, u.points) for u in decision.usage] == [("r", "2026-11", 30)]


def test_cap_period_uses_program_time_zone() -> None:
    # 2026-11-30T23:30Z is already 1 December in Paris: a new month, a fresh cap.
    engine = evaluator(
        "rules:\n  - id: r\n    on: [purchase]\n    fixed: 40\n"
        "    cap_per_member: {points: 40, period: month}\n"
    )
    state = member(rule_points={("r", "2026-11"): 40})
    decision = engine.evaluate(purchase("1.00", at="2026-11-30T23:30:00+00:00"), state)
    assert decision.points("points") == 40
    assert decision.usage[0].period == "2026-12"


def test_budget_trims_then_exhausts_with_code() -> None:
    body = (
        "rules:\n  - {id: promo, on: [purchase], fixed: 30, budget: 100}\n"
        "  - {id: base, on: [purchase], fixed: 1}\n"
    )
    engine = evaluator(body)
    trimmed = engine.evaluate(purchase("1.00"), member(), ProgramState({"promo": 80}))
    assert trimmed.points("points") == 21
    assert trimmed.budget_spent == {"promo": 20}
    exhausted = engine.evaluate(purchase("1.00"), member(), ProgramState({"promo": 100}))
    assert outcomes(exhausted.trace) == [
        ("promo", "rule_budget_exhausted", 0),
        ("base", "matched", 1),
    ]
    assert exhausted.budget_spent == {}


def test_window_start_inclusive_end_exclusive() -> None:
    engine = evaluator(
        "rules:\n  - id: r\n    on: [purchase]\n    fixed: 5\n"
        "    window: {start: 2026-12-01T00:00:00+01:00, end: 2026-12-02T00:00:00+01:00}\n"
    )
    at_start = engine.evaluate(purchase("1", at="2026-12-01T00:00:00+01:00"), member())
    at_end = engine.evaluate(purchase("1", at="2026-12-02T00:00:00+01:00"), member())
    assert at_start.points("points") == 5
    assert at_end.trace[0].outcome is Outcome.outside_window


def test_window_compares_instants_whatever_the_offsets() -> None:
    engine = evaluator(
        "rules:\n  - id: r\n    on: [purchase]\n    fixed: 5\n"
        "    window: {start: 2026-12-01T00:00:00+01:00, end: 2026-12-02T00:00:00+01:00}\n"
    )
    # the same instants as the bounds, and one microsecond either side, written in UTC
    # and in New York time
    inside = ["2026-11-30T23:00:00+00:00", "2026-12-01T22:59:59.999999+00:00",
              "2026-11-30T18:00:00-05:00", "2026-12-01T17:59:59.999999-05:00"]  # fmt: skip
    outside = ["2026-11-30T22:59:59.999999+00:00", "2026-12-01T23:00:00+00:00",
               "2026-11-30T17:59:59.999999-05:00", "2026-12-01T18:00:00-05:00"]  # fmt: skip
    for at in inside:
        assert engine.evaluate(purchase("1", at=at), member()).points("points") == 5, at
    for at in outside:
        decision = engine.evaluate(purchase("1", at=at), member())
        assert decision.trace[0].outcome is Outcome.outside_window, at


def test_segment_gate_requires_one_segment() -> None:
    engine = evaluator("rules:\n  - {id: r, on: [purchase], fixed: 5, segments: [vip, staff]}\n")
    assert (
        engine.evaluate(purchase("1"), member(segments=frozenset({"staff"}))).points("points") == 5
    )
    outsider = engine.evaluate(purchase("1"), member(segments=frozenset({"new"})))
    assert outsider.trace[0].outcome is Outcome.segment


def test_condition_sees_local_weekday_and_hour() -> None:
    # Sunday 2026-11-22 23:30 UTC is Monday 00:30 in Paris: weekday 1, hour 0.
    engine = evaluator(
        "rules:\n  - {id: r, on: [purchase], fixed: 5,"
        " when: 'event.weekday == 1 && event.hour == 0'}\n"
    )
    decision = engine.evaluate(purchase("1", at="2026-11-22T23:30:00+00:00"), member())
    assert decision.points("points") == 5


def test_condition_error_is_traced_not_raised() -> None:
    engine = evaluator(
        "rules:\n  - {id: r, on: [purchase], fixed: 5, when: 'event.attributes.lane == 2'}\n"
    )
    decision = engine.evaluate(purchase("1"), member())
    assert decision.trace[0].outcome is Outcome.condition_error
    assert decision.points("points") == 0


def test_member_fields_in_condition() -> None:
    engine = evaluator(
        "tiers:\n  levels:\n    - {id: base, name: Base, threshold: 0}\n"
        "    - {id: gold, name: Gold, threshold: 500}\n"
        "rules:\n  - id: r\n    on: [purchase]\n    fixed: 5\n"
        '    when: member.tier == "gold" && "vip" in member.segments && member.purchases >= 3'
        ' && member.attributes.city == "Lyon" && member.days_since_joined >= 30\n'
    )
    state = MemberState(
        ref="m1",
        tier="gold",
        segments=frozenset({"vip"}),
        purchases=3,
        attributes={"city": "Lyon"},
        joined_at=datetime.fromisoformat("2026-10-24T10:00:00+01:00"),
    )
    assert engine.evaluate(purchase("1"), state).points("points") == 5


def test_non_purchase_events_by_name() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: signup, on: [signup], fixed: 100}\n"
        "  - {id: birthday, on: [birthday], fixed: 250, when: member.birthday}\n"
        "  - {id: workshop, on: [workshop], fixed: 150}\n"
    )
    born = member(birth_date=datetime(1990, 11, 23).date())
    assert engine.evaluate(action("signup"), born).points("points") == 100
    assert engine.evaluate(action("birthday"), born).points("points") == 250
    assert engine.evaluate(action("birthday"), member()).points("points") == 0
    assert engine.evaluate(action("workshop"), born).points("points") == 150


@pytest.mark.parametrize(
    ("day", "points"),
    [
        ("2027-02-28", 250),  # no 29 February in 2027: celebrated the day before
        ("2027-03-01", 0),
        ("2027-02-27", 0),
        ("2028-02-28", 0),  # 2028 has its 29 February
        ("2028-02-29", 250),
    ],
)
def test_birthday_on_29_february_is_celebrated_on_28_february_in_other_years(
    day: str, points: int
) -> None:
    engine = evaluator(
        "rules:\n  - {id: birthday, on: [birthday], fixed: 250, when: member.birthday}\n"
    )
    leapling = member(birth_date=datetime(2000, 2, 29).date())
    decision = engine.evaluate(action("birthday", at=f"{day}T09:00:00+01:00"), leapling)
    assert decision.points("points") == points
    born_28 = member(birth_date=datetime(2000, 2, 28).date())
    on_28 = action("birthday", at="2027-02-28T09:00:00+01:00")
    assert engine.evaluate(on_28, born_28).points("points") == 250


def test_tier_multiplier_applies_to_flagged_rules_only() -> None:
    engine = evaluator(
        "rules:\n"
        "  - {id: base, on: [purchase], per_amount: {points: 1}}\n"
        "  - {id: flat, on: [purchase], fixed: 10, tier_multiplier: false}\n"
        "tiers:\n  levels:\n"
        "    - {id: base, name: Base, threshold: 0}\n"
        "    - {id: gold, name: Gold, threshold: 100, earn_multiplier: 1.5}\n"
    )
    decision = engine.evaluate(purchase("45.00"), member(tier="gold"))
    assert outcomes(decision.trace)[-1] == ("tier:gold", "matched", 22)
    assert decision.points("points") == 45 + 10 + 22


def test_a_tier_bonus_taking_the_event_past_the_largest_award_gives_nothing() -> None:
    engine = evaluator(
        "rules:\n  - {id: most, on: [purchase], fixed: 800000000000000}\n"
        "tiers:\n  levels:\n"
        "    - {id: base, name: Base, threshold: 0}\n"
        "    - {id: gold, name: Gold, threshold: 100, earn_multiplier: 1.5}\n"
    )
    decision = engine.evaluate(purchase("45.00"), member(tier="gold"))
    assert [(t.rule, t.outcome, t.points, t.note) for t in decision.trace][-1] == (
        "tier:gold",
        Outcome.condition_error,
        0,
        "came to 400000000000000 points, which with the 800000000000000 points of the rules "
        "before it is more than the largest award (1000000000000000 points)",
    )
    assert decision.points("points") == 800000000000000


def test_pending_and_expiry_dates_follow_policies() -> None:
    engine = evaluator(
        "rules:\n  - {id: base, on: [purchase, review], fixed: 1}\n"
        "expiry: {mode: after_earning, months: 12, rounding: end_of_year}\n"
        "pending: {days: 30}\n"
    )
    (earning,) = engine.evaluate(purchase("1", at="2026-03-15T12:00:00+01:00"), member()).earnings
    # 30 local days: 12:00 again, in summer time (30 x 24 hours would end at 13:00)
    assert earning.pending_until == datetime.fromisoformat("2026-04-14T12:00:00+02:00")
    assert earning.expires_at == datetime.fromisoformat("2028-01-01T00:00:00+01:00")
    (review,) = engine.evaluate(action("review", at="2026-03-15T12:00:00+01:00"), member()).earnings
    assert review.pending_until is None
