"""What a rule already gave counts against its per-member cap whatever period kind it was
recorded under: every label whose days overlap the current period counts in full (a
month inside the year, a week straddling two months against both, ``ever`` against
everything). Labels of the rule's own kind never overlap another, so a rule whose period
never changed reads its own label only."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta

import pytest

from fidelite.engine.period import label_span, overlap, used_in_period
from fidelite.engine.snapshot import member_from_json
from fidelite.program.rule import Period
from tests.engine.helpers import evaluator, member, purchase

CAPPED = """\
rules:
  - id: capped
    on: [purchase]
    per_amount: {points: 1}
    cap_per_member: {points: 100, period: %s}
"""


@pytest.mark.parametrize(
    ("label", "first", "last"),
    [
        ("2026-11-20", date(2026, 11, 20), date(2026, 11, 20)),
        ("2026-W44", date(2026, 10, 26), date(2026, 11, 1)),
        ("2026-W01", date(2025, 12, 29), date(2026, 1, 4)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("9999-12", date(9999, 12, 1), date(9999, 12, 31)),  # the calendar's last month
        ("9999-W52", date(9999, 12, 27), date(9999, 12, 31)),  # its Sunday would be in 10000
        ("ever", date.min, date.max),
        ("not a period", date.min, date.max),  # none is written so: counts everywhere
    ],
)
def test_label_span(label: str, first: date, last: date) -> None:
    assert label_span(label) == (first, last)


def test_used_in_period_sums_the_overlapping_labels_of_the_rule() -> None:
    points = {
        ("capped", "2026-11"): 50,
        ("capped", "2026-10"): 7,
        ("capped", "2026-W44"): 3,  # 26 Oct - 1 Nov
        ("capped", "2026-11-25"): 2,
        ("capped", "2025"): 1000,
        ("other", "2026"): 900,
    }
    at = datetime(2026, 11, 20, 10)
    assert used_in_period(points, "capped", Period.year, at) == ("2026", 62)
    assert used_in_period(points, "capped", Period.month, at) == ("2026-11", 55)
    assert used_in_period(points, "capped", Period.week, at) == ("2026-W47", 50)
    assert used_in_period(points, "capped", Period.day, at) == ("2026-11-20", 50)
    assert used_in_period(points, "capped", Period.ever, at) == ("ever", 1062)
    october = datetime(2026, 10, 28, 10)
    assert used_in_period(points, "capped", Period.month, october) == ("2026-10", 10)
    assert used_in_period(points, "capped", Period.year, datetime(2027, 1, 1)) == ("2027", 0)
    assert used_in_period({("capped", "ever"): 4}, "capped", Period.day, at) == ("2026-11-20", 4)


def test_month_usage_counts_against_the_new_yearly_cap() -> None:
    engine = evaluator(CAPPED % "year")
    state = member(rule_points={("capped", "2026-11"): 50, ("capped", "2025-12"): 80})
    decision = engine.evaluate(purchase("200"), state)
    assert decision.points("points") == 50
    assert [(u.rule, u.period, u.points) for u in decision.usage] == [("capped", "2026", 50)]
    assert [t.note for t in decision.trace] == ["200 capped at 50 left for 2026"]


def test_same_kind_labels_of_other_periods_do_not_count() -> None:
    engine = evaluator(CAPPED % "month")
    state = member(rule_points={("capped", "2026-10"): 100, ("capped", "2026-12"): 100})
    assert engine.evaluate(purchase("60"), state).points("points") == 60


def test_dry_run_snapshot_counts_other_kinds_as_well() -> None:
    state = member_from_json({"ref": "m1", "rule_points": {"capped@2026-W48": 70}})
    # Monday 23 November is in 2026-W48: 70 of the month's 100 already given
    assert evaluator(CAPPED % "month").evaluate(purchase("200"), state).points("points") == 30


def _mixed_usage() -> dict[tuple[str, str], int]:
    """Usage of two rules under labels of every kind, as a cap changed day -> week ->
    month -> year -> ever would leave them, with distinct points."""
    points: dict[tuple[str, str], int] = {}
    day = date(2020, 11, 1)
    n = 0
    while day <= date(2029, 3, 31):
        n += 1
        year, week, _ = day.isocalendar()
        for label in (
            day.isoformat() if n % 3 == 0 else None,
            f"{year}-W{week:02d}" if n % 11 == 0 else None,
            f"{day.year}-{day.month:02d}" if n % 37 == 0 else None,
            str(day.year) if n % 400 == 0 else None,
        ):
            if label is not None:
                points[("capped", label)] = points.get(("capped", label), 0) + n
                points[("other", label)] = 1_000_000
        day += timedelta(days=1)
    points[("capped", "ever")] = 5
    return points


def _overlapping_reference(points: dict[tuple[str, str], int], rule: str, key: str) -> int:
    """What the rule gave in ``key``'s days: every label of the rule overlapping them."""
    span = label_span(key)
    return sum(
        p for (r, label), p in points.items() if r == rule and overlap(span, label_span(label))
    )


@pytest.mark.parametrize(
    "period", [Period.day, Period.week, Period.month, Period.year, Period.ever]
)
def test_mixed_kinds_give_what_every_overlapping_label_adds_up_to(period: Period) -> None:
    points = _mixed_usage()
    kinds = {len(label) for _, label in points}
    assert kinds == {4, 7, 8, 10}  # years and ever, months, weeks, days all present
    days = [
        *(date(2020, 12, 20) + timedelta(days=i) for i in range(25)),  # 2020-W53, new year
        *(date(2024, 2, 20) + timedelta(days=i) for i in range(15)),  # leap day
        *(date(2026, 12, 24) + timedelta(days=i) for i in range(14)),  # 2026-W53
        date(2029, 3, 31),
        date(2031, 6, 1),  # after all usage: only 'ever' counts
    ]
    from_other_labels = 0
    for day in days:
        at = datetime(day.year, day.month, day.day, 23, 59)
        key, used = used_in_period(points, "capped", period, at)
        assert used == _overlapping_reference(points, "capped", key), (day, key)
        from_other_labels += used > points.get(("capped", key), 0)
    assert from_other_labels == len(days)  # 'ever' at least, mostly more
    # exact values, worked out by hand
    assert used_in_period({("capped", "2020-W53"): 3, ("capped", "2021-01"): 4,
                           ("capped", "2020-12-31"): 5, ("capped", "2021"): 6},
                          "capped", period, datetime(2021, 1, 2, 12)) == {
        Period.day: ("2021-01-02", 13),
        Period.week: ("2020-W53", 18),
        Period.month: ("2021-01", 13),
        Period.year: ("2021", 13),
        Period.ever: ("ever", 18),
    }[period]  # fmt: skip


class _NoWalk(Mapping[tuple[str, str], int]):
    """A member's usage that may be looked up but not walked through."""

    def __init__(self, rows: dict[tuple[str, str], int]) -> None:
        self.rows = rows

    def __getitem__(self, key: tuple[str, str]) -> int:
        return self.rows[key]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        raise AssertionError("walked through all of the member's usage")


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        # its day(s), then 2026-W46 (9-15 Nov), 2026-11 and ever; never 2025-11 nor 'other'
        (Period.day, ("2026-11-23", 1 + 1 + 5)),
        (Period.week, ("2026-W48", 1 + 1 + 5)),
        (Period.month, ("2026-11", 23 + 4 + 1 + 5)),
        (Period.year, ("2026", 327 + 4 + 1 + 5)),
    ],
)
def test_a_period_of_days_looks_up_its_labels_without_walking_the_usage(
    period: Period, expected: tuple[str, int]
) -> None:
    # three years of daily usage plus labels of other rules and kinds: over 2,000 rows
    rows: dict[tuple[str, str], int] = {("capped", "ever"): 5, ("capped", "2026-W46"): 4}
    day = date(2024, 1, 1)
    while day <= date(2026, 11, 23):
        rows[("capped", day.isoformat())] = 1
        rows[("other", day.isoformat())] = 100
        day += timedelta(days=1)
    rows[("capped", "2026-11")] = 1
    rows[("capped", "2025-11")] = 100
    assert len(rows) > 2000
    at = datetime(2026, 11, 23, 10)
    assert used_in_period(_NoWalk(rows), "capped", period, at) == expected
    assert used_in_period(rows, "capped", period, at) == expected
