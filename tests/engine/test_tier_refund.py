"""A refund and the tier its purchase unlocked: kept, moved to a later date, or undone.

The member keeps the level when, without what was refunded, their value reached its
threshold at some moment from the upgrade to the refund (each moment over its own
window); reached only later, the level and its re-qualification date from that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from fidelite.engine.tiers import (
    Activity,
    TierChange,
    TierState,
    assign,
    initial_state,
    on_activity,
    on_refund,
    review,
)
from fidelite.program.tier import TierPolicy

PARIS = ZoneInfo("Europe/Paris")
LEVELS = [
    {"id": "bronze", "name": "Bronze", "threshold": 0},
    {"id": "silver", "name": "Silver", "threshold": 300},
    {"id": "gold", "name": "Gold", "threshold": 1000},
]


def policy(**fields: object) -> TierPolicy:
    return TierPolicy.model_validate({"levels": LEVELS, **fields})


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=PARIS)


def entry(change: TierChange) -> tuple[str, str, str, str, str]:
    return (
        change.at.date().isoformat(),
        change.kind.value,
        change.from_tier,
        change.to_tier,
        str(change.value),
    )


@dataclass
class Purchase:
    at: datetime
    paid: Decimal
    points: int
    refunded: Decimal = Decimal(0)
    reversed: int = 0


@dataclass
class Member:
    """A member as the processor keeps them: purchases (and other earning events) with
    what refunds took back, and the tier state; every tier change on one timeline."""

    rules: TierPolicy
    state: TierState
    purchases: dict[str, Purchase] = field(default_factory=dict)
    timeline: list[TierChange] = field(default_factory=list)

    def activities(self) -> list[Activity]:
        # As the processor's ``activity``: the amount less refunds, points less those
        # reversed, no longer a purchase once refunded in full.
        return [
            Activity(
                p.at,
                spend=p.paid - p.refunded,
                points=p.points - p.reversed,
                purchases=0 if p.refunded >= p.paid > 0 else 1,
            )
            for p in self.purchases.values()
        ]

    def buy(self, ref: str, day: str, amount: str, points: int | None = None) -> None:
        paid = Decimal(amount)
        self.purchases[ref] = Purchase(at(day), paid, int(paid) if points is None else points)
        self.state, changes = on_activity(self.rules, self.state, self.activities(), at(day), PARIS)
        self.timeline.extend(changes)

    def earn(self, ref: str, day: str, points: int) -> None:
        """An event that earned points and is no purchase (a sign-up, a review)."""
        self.purchases[ref] = Purchase(at(day), Decimal(0), points)
        self.state, changes = on_activity(self.rules, self.state, self.activities(), at(day), PARIS)
        self.timeline.extend(changes)

    def refund(self, ref: str, day: str, amount: str | None = None) -> list[TierChange]:
        bought = self.purchases[ref]
        back = bought.paid - bought.refunded if amount is None else Decimal(amount)
        bought.refunded += back
        bought.reversed = int(bought.points * bought.refunded / bought.paid)
        self.state, changes = on_refund(
            self.rules, self.state, self.activities(), bought.at, at(day), PARIS
        )
        self.timeline.extend(changes)
        return changes

    def review(self, day: str) -> None:
        self.state, changes = review(self.rules, self.state, self.activities(), at(day), PARIS)
        self.timeline.extend(changes)

    def entries(self) -> list[tuple[str, str, str, str, str]]:
        return [entry(c) for c in self.timeline]


def member(**fields: object) -> Member:
    rules = policy(**fields)
    return Member(rules, initial_state(rules, at("2025-01-01")))


def test_a_later_purchase_keeps_the_level_from_its_own_date() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")  # 400 >= 300: silver, review 2026-02-01
    ann.buy("p2", "2025-03-01", "350")  # 750: still silver
    ann.refund("p1", "2025-03-10")
    # Without p1 the member had 0 at the upgrade, but 350 from 2025-03-01: still
    # silver, now from 2025-03-01, and re-qualified a year after that.
    assert ann.state == TierState("silver", at("2025-03-01"), review_at=at("2026-03-01"))
    assert ann.timeline[-1].reason == "refund: spend 350 reaches 300 from 2025-03-01"
    # The review on the new date: (2025-03-01, 2026-03-01] no longer holds p2.
    ann.review("2026-03-01")
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-03-10", "requalified", "silver", "silver", "350"),
        ("2026-03-01", "downgrade", "silver", "bronze", "0"),
    ]
    assert ann.state == TierState("bronze", at("2026-03-01"), review_at=None)


def test_refunding_the_later_purchase_too_undoes_the_level() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")
    ann.buy("p2", "2025-03-01", "350")
    ann.refund("p1", "2025-03-10")
    # The level now dates from p2, so refunding p2 is looked at as well.
    ann.refund("p2", "2025-04-01")
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-03-10", "requalified", "silver", "silver", "350"),
        ("2025-04-01", "upgrade_reversed", "silver", "bronze", "0"),
    ]
    assert ann.timeline[-1].reason == "refund: spend 0 no longer reaches 300"
    assert ann.state == TierState("bronze", at("2025-03-01"), review_at=None)


def test_a_later_purchase_too_small_leaves_the_highest_value_reached() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")
    ann.buy("p2", "2025-03-01", "100")
    ann.refund("p1", "2025-03-10")
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-03-10", "upgrade_reversed", "silver", "bronze", "100"),
    ]
    assert ann.timeline[-1].reason == "refund: spend 100 no longer reaches 300"
    assert ann.state == TierState("bronze", at("2025-02-01"), review_at=None)


def test_a_later_purchase_reaching_a_lower_level_gives_that_level_from_its_date() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "1200")  # gold at once
    ann.buy("p2", "2025-03-01", "400")
    ann.buy("p3", "2025-03-05", "100")
    ann.refund("p1", "2025-03-10")
    # Without p1: 0 at the upgrade, silver from 2025-03-01 (400), 500 at most: not gold.
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "gold", "1200"),
        ("2025-03-10", "upgrade_reversed", "gold", "silver", "500"),
    ]
    assert ann.timeline[-1].reason == "refund: spend 500 no longer reaches 1000"
    assert ann.state == TierState("silver", at("2025-03-01"), review_at=at("2026-03-01"))


def test_a_purchase_dated_after_the_refund_does_not_count() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")
    ann.buy("p2", "2025-04-01", "350")  # recorded before a refund dated earlier
    ann.refund("p1", "2025-03-10")
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-03-10", "upgrade_reversed", "silver", "bronze", "0"),
    ]


def test_rolling_window_a_moment_when_the_rest_reached_the_level_keeps_it() -> None:
    ann = member()
    ann.buy("p0", "2025-01-15", "250")
    ann.buy("p1", "2025-12-01", "100")  # 350: silver
    ann.buy("p2", "2026-01-10", "60")  # 410; without p1 310 on this day
    # p0 leaves the window on 2026-01-15: at the refund only 60 is left in it.
    ann.refund("p1", "2026-02-10")
    assert ann.entries() == [
        ("2025-12-01", "upgrade", "bronze", "silver", "350"),
        ("2026-02-10", "requalified", "silver", "silver", "310"),
    ]
    assert ann.timeline[-1].reason == "refund: spend 310 reaches 300 from 2026-01-10"
    assert ann.state == TierState("silver", at("2026-01-10"), review_at=at("2027-01-10"))


def test_rolling_window_a_purchase_that_left_the_window_does_not_count() -> None:
    ann = member()
    ann.buy("p0", "2025-01-15", "250")
    ann.buy("p1", "2025-12-01", "100")  # 350: silver
    ann.buy("p2", "2026-02-01", "60")  # p0 left on 2026-01-15: 160, without p1 60
    ann.refund("p1", "2026-02-10")
    # 250 + 60 = 310 were never in one window: 250 at most (at the upgrade).
    assert ann.entries() == [
        ("2025-12-01", "upgrade", "bronze", "silver", "350"),
        ("2026-02-10", "upgrade_reversed", "silver", "bronze", "250"),
    ]
    assert ann.state == TierState("bronze", at("2025-12-01"), review_at=None)


def test_calendar_year_a_purchase_of_the_new_year_keeps_the_level() -> None:
    ann = member(window="calendar_year")
    ann.buy("p1", "2025-12-20", "400")  # silver, review 2026-01-01
    ann.review("2026-01-01")  # 2025 = 400: re-qualified until 2027-01-01
    ann.buy("p2", "2026-01-05", "350")
    ann.refund("p1", "2026-01-10")
    # Without p1, 2025 held nothing: silver only from p2, re-qualified on 1 January 2027.
    assert ann.entries() == [
        ("2025-12-20", "upgrade", "bronze", "silver", "400"),
        ("2026-01-01", "requalified", "silver", "silver", "400"),
        ("2026-01-10", "requalified", "silver", "silver", "350"),
    ]
    assert ann.state == TierState("silver", at("2026-01-05"), review_at=at("2027-01-01"))


def test_calendar_year_the_closed_year_and_the_new_one_do_not_add_up() -> None:
    ann = member(window="calendar_year")
    ann.buy("p0", "2025-06-01", "250")
    ann.buy("p1", "2025-12-20", "100")  # 350 in 2025: silver
    ann.review("2026-01-01")  # 2025 = 350: re-qualified (with p1)
    ann.buy("p2", "2026-01-05", "60")
    ann.refund("p1", "2026-01-10")
    assert ann.entries() == [
        ("2025-12-20", "upgrade", "bronze", "silver", "350"),
        ("2026-01-01", "requalified", "silver", "silver", "350"),
        ("2026-01-10", "upgrade_reversed", "silver", "bronze", "250"),
    ]
    assert ann.state == TierState("bronze", at("2025-12-20"), review_at=None)


def test_partial_refund_leaving_enough_changes_nothing() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")
    before = ann.state
    assert ann.refund("p1", "2025-02-05", "100") == []  # 300 left: still reaches 300
    assert ann.state == before == TierState("silver", at("2025-02-01"), at("2026-02-01"))
    # A second part takes it below: 250, and nothing later to make up for it.
    ann.refund("p1", "2025-02-06", "50")
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-02-06", "upgrade_reversed", "silver", "bronze", "250"),
    ]


def test_partial_refund_made_up_by_a_later_purchase() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")
    ann.buy("p2", "2025-03-01", "80")
    ann.refund("p1", "2025-03-10", "150.00")  # 250 at the upgrade, 330 from 2025-03-01
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-03-10", "requalified", "silver", "silver", "330.00"),
    ]
    assert ann.state == TierState("silver", at("2025-03-01"), review_at=at("2026-03-01"))


def test_purchases_metric_counts_a_later_purchase() -> None:
    levels = [
        {"id": "bronze", "name": "Bronze", "threshold": 0},
        {"id": "silver", "name": "Silver", "threshold": 3},
    ]
    rules = TierPolicy.model_validate({"metric": "purchases", "levels": levels})
    ann = Member(rules, initial_state(rules, at("2025-01-01")))
    for ref, day in [("p1", "2025-02-01"), ("p2", "2025-02-02"), ("p3", "2025-02-03")]:
        ann.buy(ref, day, "10")  # the third: silver
    ann.refund("p3", "2025-02-08", "5")  # partly: still a purchase
    assert ann.state == TierState("silver", at("2025-02-03"), at("2026-02-03"))
    ann.buy("p4", "2025-02-10", "10")
    ann.refund("p3", "2025-02-12")  # in full: 2 at the upgrade, 3 again from p4
    ann.refund("p4", "2025-02-20")  # 2 from p4's date on
    assert ann.entries() == [
        ("2025-02-03", "upgrade", "bronze", "silver", "3"),
        ("2025-02-12", "requalified", "silver", "silver", "3"),
        ("2025-02-20", "upgrade_reversed", "silver", "bronze", "2"),
    ]
    assert ann.state == TierState("bronze", at("2025-02-10"), review_at=None)


def test_points_metric_counts_points_earned_after_the_upgrade() -> None:
    ann = member(metric="points")
    ann.buy("p1", "2025-02-01", "400")  # 400 points: silver
    ann.earn("review", "2025-02-15", 120)
    ann.buy("p2", "2025-03-01", "200")  # 720 points
    ann.refund("p1", "2025-03-10", "200")  # 200 points back: 200 at the upgrade
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-03-10", "requalified", "silver", "silver", "320"),
    ]
    assert ann.timeline[-1].reason == "refund: points 320 reaches 300 from 2025-02-15"
    assert ann.state == TierState("silver", at("2025-02-15"), review_at=at("2026-02-15"))


def test_levels_not_unlocked_by_the_purchase_are_left_to_review() -> None:
    ann = member()
    ann.buy("p0", "2025-02-01", "400")  # silver before p1
    ann.buy("p1", "2025-03-01", "50")
    assert ann.refund("p1", "2025-03-10") == []
    rules = policy()
    state, _ = assign(rules, initial_state(rules, at("2025-01-01")), "gold",
                      at("2025-02-01"), at("2025-08-01"), "goodwill")  # fmt: skip
    activities = [Activity(at("2025-02-02"), spend=Decimal(0), purchases=0)]
    assert on_refund(rules, state, activities, at("2025-02-02"), at("2025-02-03"), PARIS) == (
        state,
        [],
    )


def test_rolling_window_a_purchase_exactly_window_months_old_has_left() -> None:
    ann = member()
    ann.buy("p0", "2025-01-15", "250")
    ann.buy("p1", "2025-12-01", "100")  # 350: silver
    ann.buy("p2", "2026-01-15", "60")  # (2025-01-15, 2026-01-15]: p0 is out, 160
    ann.refund("p1", "2026-01-20")
    assert ann.entries() == [
        ("2025-12-01", "upgrade", "bronze", "silver", "350"),
        ("2026-01-20", "upgrade_reversed", "silver", "bronze", "250"),
    ]
