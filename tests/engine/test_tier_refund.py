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
    Assignment,
    ChangeKind,
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
        f"{change.value.normalize():f}",  # four places: compared as a number
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
    joined: datetime
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
            self.rules, self.state, self.activities(), bought.at, at(day), PARIS,
            enrolled=self.joined,
        )  # fmt: skip
        self.timeline.extend(changes)
        return changes

    def review(self, day: str) -> None:
        self.state, changes = review(self.rules, self.state, self.activities(), at(day), PARIS)
        self.timeline.extend(changes)

    def entries(self) -> list[tuple[str, str, str, str, str]]:
        return [entry(c) for c in self.timeline]


def member(**fields: object) -> Member:
    rules = policy(**fields)
    return Member(rules, initial_state(rules, at("2025-01-01")), at("2025-01-01"))


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
    assert ann.state == TierState("bronze", at("2025-01-01"), review_at=None)  # enrolment


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
    assert ann.state == TierState("bronze", at("2025-01-01"), review_at=None)  # enrolment


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


def test_a_purchase_dated_after_the_refund_and_recorded_before_it_counts_from_its_date() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")
    ann.buy("p2", "2025-04-01", "350")  # recorded before a refund dated earlier
    ann.refund("p1", "2025-03-10")
    # As if the refund had come first: bronze from 2025-03-10, silver again from p2's 350
    # on 2025-04-01. The member keeps silver from that date, with its review a year on.
    assert ann.entries() == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400"),
        ("2025-03-10", "requalified", "silver", "silver", "350"),
    ]
    assert ann.timeline[-1].reason == "refund: spend 350 reaches 300 from 2025-04-01"
    assert ann.state == TierState("silver", at("2025-04-01"), review_at=at("2026-04-01"))


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
    assert ann.state == TierState("bronze", at("2025-01-01"), review_at=None)  # enrolment


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
    assert ann.state == TierState("bronze", at("2025-01-01"), review_at=None)  # enrolment


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
        ("2025-03-10", "requalified", "silver", "silver", "330"),
    ]
    assert ann.state == TierState("silver", at("2025-03-01"), review_at=at("2026-03-01"))


def test_purchases_metric_counts_a_later_purchase() -> None:
    levels = [
        {"id": "bronze", "name": "Bronze", "threshold": 0},
        {"id": "silver", "name": "Silver", "threshold": 3},
    ]
    rules = TierPolicy.model_validate({"metric": "purchases", "levels": levels})
    ann = Member(rules, initial_state(rules, at("2025-01-01")), at("2025-01-01"))
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
    assert ann.state == TierState("bronze", at("2025-01-01"), review_at=None)  # enrolment


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
                      at("2025-02-01"), at("2025-08-01"), "goodwill", activities=[],
                      zone=PARIS)  # fmt: skip
    activities = [Activity(at("2025-02-02"), spend=Decimal(0), purchases=0)]
    assert on_refund(
        rules,
        state,
        activities,
        at("2025-02-02"),
        at("2025-02-03"),
        PARIS,
        enrolled=at("2025-01-01"),
    ) == (
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


# The level held before the purchase, and the re-qualifications from the purchase to
# the refund, played again without what was refunded. Every entry the refund writes is
# dated at the refund; its reason names the date a replayed step took effect.


def log(ann: Member) -> list[tuple[str, str, str, str, str, str]]:
    return [(*entry(c), c.reason) for c in ann.timeline]


def gold_in_grace() -> Member:
    """Gold from 2025-02-01; at the review of 2026-02-01 the purchase has left the
    window (0): grace until 2026-05-01; a purchase of 1000 on 2026-03-01 ends it."""
    ann = member(grace_months=3)
    ann.buy("p1", "2025-02-01", "1200")
    ann.review("2026-02-01")
    ann.buy("p2", "2026-03-01", "1000")
    assert ann.state == TierState("gold", at("2025-02-01"), review_at=at("2027-03-01"))
    return ann


GRACE_HISTORY = [
    ("2025-02-01", "upgrade", "bronze", "gold", "1200", "spend 1200 reached 1000"),
    ("2026-02-01", "grace_started", "gold", "gold", "0",
     "spend 0 below 1000; grace until 2026-05-01"),
    ("2026-03-01", "requalified", "gold", "gold", "1000", "spend 1000 meets 1000"),
]  # fmt: skip


def test_refunding_the_purchase_that_ended_a_grace_period_restores_it() -> None:
    ann = gold_in_grace()
    ann.refund("p2", "2026-03-20")
    # Still gold, in the grace period of the 2026-02-01 review, which ends as it would have.
    assert ann.state == TierState(
        "gold", at("2025-02-01"), review_at=at("2026-02-01"), grace_until=at("2026-05-01")
    )
    ann.review("2026-05-01")
    assert log(ann) == [
        *GRACE_HISTORY,
        ("2026-03-20", "grace_started", "gold", "gold", "0",
         "refund: spend 0 below 1000; grace until 2026-05-01 again"),
        ("2026-05-01", "downgrade", "gold", "silver", "0",
         "spend 0 below 1000 at re-qualification"),
    ]  # fmt: skip
    assert ann.state == TierState("silver", at("2026-05-01"), review_at=at("2027-05-01"))


def test_refunding_it_after_the_grace_period_would_have_ended_moves_down_one_level() -> None:
    ann = gold_in_grace()
    ann.refund("p2", "2026-06-15")
    assert log(ann) == [
        *GRACE_HISTORY,
        ("2026-06-15", "downgrade", "gold", "silver", "0",
         "refund: on 2026-05-01, spend 0 below 1000 at re-qualification"),
    ]  # fmt: skip
    assert ann.state == TierState("silver", at("2026-05-01"), review_at=at("2027-05-01"))


def test_refunding_it_late_with_to_qualified_moves_to_the_level_qualified_for() -> None:
    ann = member(grace_months=3, downgrade="to_qualified")
    ann.buy("p1", "2025-02-01", "1200")
    ann.review("2026-02-01")
    ann.buy("p2", "2026-03-01", "1000")
    ann.refund("p2", "2026-06-15")
    assert log(ann)[-1] == (
        "2026-06-15", "downgrade", "gold", "bronze", "0",
        "refund: on 2026-05-01, spend 0 below 1000 at re-qualification",
    )  # fmt: skip
    assert ann.state == TierState("bronze", at("2026-05-01"), review_at=None)


def test_an_upgrade_from_a_level_kept_by_a_one_level_downgrade_goes_back_to_it() -> None:
    ann = member()
    ann.buy("p1", "2025-01-10", "1200")
    ann.review("2026-01-10")  # 0 in the window: one level down, silver below its threshold
    ann.buy("p2", "2026-02-01", "1000")
    ann.refund("p2", "2026-02-20")
    assert log(ann) == [
        ("2025-01-10", "upgrade", "bronze", "gold", "1200", "spend 1200 reached 1000"),
        ("2026-01-10", "downgrade", "gold", "silver", "0",
         "spend 0 below 1000 at re-qualification"),
        ("2026-02-01", "upgrade", "silver", "gold", "1000", "spend 1000 reached 1000"),
        ("2026-02-20", "upgrade_reversed", "gold", "silver", "0",
         "refund: spend 0 no longer reaches 1000"),
    ]  # fmt: skip
    # Silver as it was: from the downgrade, re-qualified a year after it.
    assert ann.state == TierState("silver", at("2026-01-10"), review_at=at("2027-01-10"))


def test_an_upgrade_made_during_a_grace_period_goes_back_into_it() -> None:
    ann = member(grace_months=3)
    ann.buy("p1", "2025-01-10", "400")  # silver, review 2026-01-10
    ann.review("2026-01-10")  # 0: grace until 2026-04-10
    ann.buy("p2", "2026-02-01", "1000")  # gold
    ann.refund("p2", "2026-03-01")
    assert ann.state == TierState(
        "silver", at("2025-01-10"), review_at=at("2026-01-10"), grace_until=at("2026-04-10")
    )
    ann.review("2026-04-10")
    assert log(ann) == [
        ("2025-01-10", "upgrade", "bronze", "silver", "400", "spend 400 reached 300"),
        ("2026-01-10", "grace_started", "silver", "silver", "0",
         "spend 0 below 300; grace until 2026-04-10"),
        ("2026-02-01", "upgrade", "silver", "gold", "1000", "spend 1000 reached 1000"),
        ("2026-03-01", "upgrade_reversed", "gold", "silver", "0",
         "refund: spend 0 no longer reaches 1000"),
        ("2026-04-10", "downgrade", "silver", "bronze", "0",
         "spend 0 below 300 at re-qualification"),
    ]  # fmt: skip
    assert ann.state == TierState("bronze", at("2026-04-10"), review_at=None)


def test_a_late_refund_replays_the_review_of_the_level_held_before() -> None:
    ann = member()
    ann.buy("p1", "2025-01-10", "400")  # silver, review 2026-01-10
    ann.buy("p2", "2025-06-01", "700")  # 1100: gold, review 2026-06-01
    ann.refund("p2", "2026-03-01")
    # Without p2 the member stayed silver, and its review of 2026-01-10 found 0 (p1 is
    # exactly 12 months old): one level down, no grace configured.
    assert log(ann) == [
        ("2025-01-10", "upgrade", "bronze", "silver", "400", "spend 400 reached 300"),
        ("2025-06-01", "upgrade", "silver", "gold", "1100", "spend 1100 reached 1000"),
        ("2026-03-01", "upgrade_reversed", "gold", "silver", "400",
         "refund: spend 400 no longer reaches 1000"),
        ("2026-03-01", "downgrade", "silver", "bronze", "0",
         "refund: on 2026-01-10, spend 0 below 300 at re-qualification"),
    ]  # fmt: skip
    assert ann.state == TierState("bronze", at("2026-01-10"), review_at=None)


def test_a_late_refund_replaces_the_reviews_the_purchase_went_through() -> None:
    ann = member(grace_months=2)
    ann.buy("p1", "2025-01-10", "400")  # silver, review 2026-01-10
    ann.buy("p2", "2025-03-01", "800")  # 1200: gold, review 2026-03-01
    ann.buy("p3", "2025-12-01", "100")
    ann.review("2026-05-01")  # 100 on 2026-03-01: grace, then one level down on 05-01
    assert ann.state == TierState("silver", at("2026-05-01"), review_at=at("2027-05-01"))
    ann.refund("p2", "2026-06-01")
    # Without p2: silver from 2025-01-10; its review on 2026-01-10 finds p3's 100: grace
    # until 2026-03-10, then one level down.
    assert log(ann) == [
        ("2025-01-10", "upgrade", "bronze", "silver", "400", "spend 400 reached 300"),
        ("2025-03-01", "upgrade", "silver", "gold", "1200", "spend 1200 reached 1000"),
        ("2026-03-01", "grace_started", "gold", "gold", "100",
         "spend 100 below 1000; grace until 2026-05-01"),
        ("2026-05-01", "downgrade", "gold", "silver", "100",
         "spend 100 below 1000 at re-qualification"),
        ("2026-06-01", "grace_started", "silver", "silver", "100",
         "refund: on 2026-01-10, spend 100 below 300; grace until 2026-03-10"),
        ("2026-06-01", "downgrade", "silver", "bronze", "100",
         "refund: on 2026-03-10, spend 100 below 300 at re-qualification"),
    ]  # fmt: skip
    assert ann.state == TierState("bronze", at("2026-03-10"), review_at=None)


def test_a_late_refund_with_a_later_purchase_keeping_the_level_replays_its_review() -> None:
    ann = member()
    ann.buy("p1", "2025-02-01", "400")  # silver, review 2026-02-01
    ann.buy("p2", "2025-03-01", "350")  # 750
    ann.buy("p3", "2026-01-15", "50")
    ann.review("2026-02-01")  # (2025-02-01, 2026-02-01] holds p2 and p3: 400
    ann.refund("p1", "2026-04-01")
    # Without p1: silver from p2 (350), reviewed on 2026-03-01 with only p3 left: 50.
    assert log(ann) == [
        ("2025-02-01", "upgrade", "bronze", "silver", "400", "spend 400 reached 300"),
        ("2026-02-01", "requalified", "silver", "silver", "400", "spend 400 meets 300"),
        ("2026-04-01", "requalified", "silver", "silver", "350",
         "refund: spend 350 reaches 300 from 2025-03-01"),
        ("2026-04-01", "downgrade", "silver", "bronze", "50",
         "refund: on 2026-03-01, spend 50 below 300 at re-qualification"),
    ]  # fmt: skip
    assert ann.state == TierState("bronze", at("2026-03-01"), review_at=None)


def test_a_refund_that_leaves_the_reviews_as_they_were_changes_nothing() -> None:
    ann = member(grace_months=3)
    ann.buy("p1", "2025-02-01", "1200")
    ann.review("2026-02-01")  # grace until 2026-05-01
    ann.buy("p2", "2026-03-01", "1000")  # ends it
    ann.buy("p3", "2026-03-02", "80")
    before = ann.state
    assert ann.refund("p3", "2026-03-20") == []
    assert ann.state == before
    assert log(ann) == GRACE_HISTORY


def test_a_refund_plays_the_history_again_from_the_latest_manual_assignment() -> None:
    """100 spent on 10 January, silver by hand from 1 February to 1 August, gold by p2
    (900) on 1 March, which ended the assignment. p2 refunded in full: silver by hand
    again, until 1 August (not bronze); an assignment dated after the refund, or an
    earlier one the latest replaced, plays no part."""
    rules = policy()
    by_hand = Assignment(at("2025-02-01"), "silver", at("2025-08-01"), "goodwill")
    state = TierState("gold", at("2025-03-01"), at("2026-03-01"))
    activities = [
        Activity(at("2025-01-10"), spend=Decimal(100), purchases=1),
        Activity(at("2025-03-01"), spend=Decimal(0), purchases=0),  # p2, refunded in full
    ]
    earlier = Assignment(at("2025-01-20"), "gold", at("2025-09-01"), "replaced")
    later = Assignment(at("2025-04-01"), "bronze", at("2025-10-01"), "after the refund")
    reversed_to = [
        TierChange(at("2025-03-15"), ChangeKind.upgrade_reversed, "gold", tier, Decimal(100),
                   "refund: spend 100 no longer reaches 1000")
        for tier in ("silver", "bronze")
    ]  # fmt: skip
    assert on_refund(rules, state, activities, at("2025-03-01"), at("2025-03-15"), PARIS,
                     [later, by_hand, earlier], enrolled=at("2025-01-01")) == (
        TierState("silver", at("2025-02-01"), assigned_until=at("2025-08-01")),
        reversed_to[:1],
    )  # fmt: skip
    assert on_refund(
        rules,
        state,
        activities,
        at("2025-03-01"),
        at("2025-03-15"),
        PARIS,
        enrolled=at("2025-01-01"),
    ) == (
        TierState("bronze", at("2025-01-01")),
        reversed_to[1:],
    )
