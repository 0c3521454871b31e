"""Bracket cohorts: brackets not yet reached are null, never a 0 % nobody could beat."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.cohorts import cohorts
from fidelite.cli.main import _register, app

_register()

# a: Jan 5, Jan 6 (day 1), Feb 20 (day 46). b: Mar 1, Mar 9 (day 8). c: Mar 29 only.
# a's refund on Mar 30 is the last day of the data.
TX = """
customer_id,timestamp,amount
a,2024-01-05,10
a,2024-01-06,10
a,2024-02-20,10
b,2024-03-01,10
b,2024-03-09,10
c,2024-03-29,10
a,2024-03-30,-5
"""


def test_bracket_cohorts_are_null_until_every_customer_reached_the_bracket(
    write_csv: Callable[..., Path],
) -> None:
    rows = {r["cohort"]: r for r in cohorts(open_dataset(write_csv(TX)), "month", "bracket").rows}
    jan, mar = rows["2024-01"], rows["2024-03"]
    assert (jan["size"], jan["days_1_7"], jan["days_8_30"], jan["days_31_90"]) == (
        1,
        100.0,
        0.0,
        100.0,
    )
    # March: b (Mar 1) and c (Mar 29). Day 1 after Mar 29 is Mar 30, inside the data: 0 of 2.
    # Day 8 after Mar 29 is after the data: null, even though b was back on day 8.
    assert (mar["size"], mar["days_1_7"], mar["days_8_30"], mar["days_31_90"]) == (
        2,
        0.0,
        None,
        None,
    )


def test_bracket_cohorts_by_day(write_csv: Callable[..., Path]) -> None:
    rows = {r["cohort"]: r for r in cohorts(open_dataset(write_csv(TX)), "day", "bracket").rows}
    b, c = rows["2024-03-01"], rows["2024-03-29"]
    assert (b["days_1_7"], b["days_8_30"], b["days_31_90"]) == (0.0, 100.0, None)
    assert (c["days_1_7"], c["days_8_30"], c["days_31_90"]) == (0.0, None, None)


def test_first_purchase_on_the_last_day_has_no_bracket_yet(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        "customer_id,timestamp,amount\na,2024-01-05,10\na,2024-01-06,10\nb,2024-03-30,10"
    )
    rows = {r["cohort"]: r for r in cohorts(open_dataset(path), "month", "bracket").rows}
    assert rows["2024-03"] == {
        "cohort": "2024-03",
        "cohort_start": rows["2024-03"]["cohort_start"],
        "size": 1,
        "days_1_7": None,
        "days_8_30": None,
        "days_31_90": None,
    }


def test_a_bracket_holding_day_0_is_refused(write_csv: Callable[..., Path]) -> None:
    """Day 0 is the first purchase itself: a bracket holding it would always be 100 %."""
    ds = open_dataset(write_csv(TX))
    for spans in ([(0, 0)], [(0, 7), (8, 30)], [(1, 7), (-3, 2)]):
        with pytest.raises(ValueError, match="from day 1"):
            cohorts(ds, "month", "bracket", spans)
    # N-period age 0 stays: the cohort period itself, 100 % by construction
    jan = cohorts(ds, "month", "n-day").rows[0]
    assert (jan["cohort"], jan["month_0"], jan["month_1"], jan["month_2"]) == (
        "2024-01",
        100.0,
        100.0,
        0.0,
    )


def test_a_bracket_given_twice_is_refused(write_csv: Callable[..., Path]) -> None:
    """One column per bracket: 1-7,1-7 gave one column while parameters listed two."""
    path = write_csv(TX)
    with pytest.raises(ValueError, match="a bracket is given twice"):
        cohorts(open_dataset(path), "month", "bracket", [(1, 7), (8, 30), (1, 7)])
    result = CliRunner().invoke(
        app, ["metrics", "cohorts", "-i", str(path), "--kind", "bracket",
              "--brackets", "1-7,8-30,1-7", "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {"code": "usage", "message": "--brackets: bracket 1-7 is given twice in "
                  "'1-7,8-30,1-7'"}
    }  # fmt: skip
    # two brackets given twice: named in the plural
    result = CliRunner().invoke(
        app, ["metrics", "cohorts", "-i", str(path), "--kind", "bracket",
              "--brackets", "1-7,8-30,1-7,8-30", "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {"code": "usage", "message": "--brackets: brackets 1-7, 8-30 are given twice "
                  "in '1-7,8-30,1-7,8-30'"}
    }  # fmt: skip
