"""What a rule already gave counts against its per-member cap whatever period kind it was
recorded under: every label whose days overlap the current period counts in full (a
month inside the year, a week straddling two months against both, ``ever`` against
everything). Labels of the rule's own kind never overlap another, so a rule whose period
never changed reads its own label only."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from fidelite.engine.period import label_span, used_in_period
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
