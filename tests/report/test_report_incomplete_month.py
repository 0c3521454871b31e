"""A month the data end in before its last day is marked incomplete: in report.json
(``incomplete_month``), by a shaded band on the retention chart, a dashed outline on the
heat map's cells of that month, and in the sections' text."""

from __future__ import annotations

import re
from pathlib import Path

from tests.report.test_report_axis_labels import _months, _report, _section


def test_a_month_the_data_end_in_is_marked_incomplete(tmp_path: Path) -> None:
    """Was: the data ending on 2023-04-05, April counted 5 days of buyers against whole
    months: retention fell to 0 % (every March customer lost) with nothing saying why."""
    lines = [
        "a,2023-01-10,10", "b,2023-01-12,10", "a,2023-02-10,10", "b,2023-02-11,10",
        "a,2023-03-10,10", "b,2023-03-11,10", "c,2023-03-15,10", "d,2023-04-05,10",
    ]  # fmt: skip
    data, html = _report(tmp_path, lines)
    assert data["incomplete_month"] == {
        "month": "2023-04",
        "data_end": "2023-04-05",
        "days_with_data": 5,
        "days_in_month": 30,
        "marked_in": ["retention", "new_vs_returning", "cohorts", "unbounded_cohorts"],
        "note": (
            "the data end on 2023-04-05, day 5 of the 30 days of 2023-04: that month's "
            "figures (monthly retention and churn, new and returning customers, and the "
            "cohort cells of that month) count only the customers who bought by then, so "
            "its retention reads too low and its churn too high until the month is "
            "complete; compare complete months only"
        ),
    }
    retention = data["metrics"]["retention"]["rows"]
    assert [(r["period"], r["retention_rate"]) for r in retention][-1] == ("2023-04", 0.0)
    chart = _section(html, "Monthly retention and churn")
    # April (x = 570, months 171.3 apart) shaded from halfway after March to the edge
    assert '<path d="M484.3 16H574.0V252H484.3Z" fill="#e5e7eb" fill-opacity="0.7"/>' in chart
    assert ">2023-04 incomplete: data end 2023-04-05</text>" in chart
    assert (
        "The shaded month, 2023-04, is not over in the data (they end on 2023-04-05, day 5 "
        "of 30): fewer of last month&#x27;s customers have had the time to come back, so "
        "its retention reads too low and its churn too high. Compare complete months only."
    ) in chart
    heat = _section(html, "Cohort heat map")
    # cells in April: January's month 3, February's 2 (no cohort), March's month 1;
    # April's own month 0 is 100 % by definition and is not marked
    dashed = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" [^>]*stroke-dasharray="3 2"/>', heat)
    cohorts = [r["cohort"] for r in data["metrics"]["cohorts"]["rows"]]
    assert cohorts == ["2023-01", "2023-03", "2023-04"]
    # the row titles take x < 200 (194 px right-aligned), cells 38 px wide, rows 20 high
    assert dashed[:-1] == [("314.5", "40.5"), ("238.5", "60.5")]  # the last: the key
    assert ">2023-04, not over in the data (they end on 2023-04-05): lower than it will be<" in (
        heat
    )
    assert "Cells with a dashed outline fall in 2023-04" in heat
    assert (
        "The last point after month 0 of each line falls in 2023-04, which the data cover "
        "only up to 2023-04-05: it may still rise (month 0 is 100 % by definition)."
    ) in _section(html, "Retention curves")


def test_data_ending_on_a_month_last_day_mark_nothing(tmp_path: Path) -> None:
    data, html = _report(tmp_path, _months(3, last_day=31))
    assert data["incomplete_month"] is None
    assert 'fill="#e5e7eb"' not in html and "incomplete" not in html
    assert 'stroke-dasharray="3 2"' not in html


def test_a_one_month_file_says_nothing_of_a_shading_it_does_not_draw(tmp_path: Path) -> None:
    """Was: a file of 2025-03-01 to 03-14 only had no retention chart ('no month of the
    data follows a month with customers'), yet its text spoke of 'the shaded month'."""
    data, html = _report(tmp_path, ["a,2025-03-01,10", "b,2025-03-05,10", "a,2025-03-14,10"])
    assert data["incomplete_month"]["month"] == "2025-03"
    chart = _section(html, "Monthly retention and churn")
    assert "no month of the data follows a month with customers" in chart
    assert "shaded month" not in chart
