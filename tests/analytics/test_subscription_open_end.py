"""Subscription dates past the supported days, and the open-ended end 9999-12-31.

An end of 9999-12-31 — what many CRM and billing exports write for a subscription still
running — made ``metrics mrr`` fail with "year 10000 is out of range"; so did a start
on that day. The marker now reads as an empty end (running), and any other start or end
whose local day is outside 0001-01-01..9998-12-31 is refused when loading, naming the
file, line and column, as for transactions. An end in 9998 still computes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.mrr import Subscriptions, mrr
from fidelite.analytics.subscriptions import load_subscriptions

HEADER = "customer_id,mrr,start,end"
REASON = "date outside the supported days, 0001-01-01 to 9998-12-31 (the local day in time zone {})"
KEYS = ("period", "customers_start", "customers_end", "starting_mrr", "new_mrr", "churned_mrr")


def _rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(*(r[k] for k in KEYS), r["ending_mrr"]) for r in rows]


# a (10) from 1 January with the marker end, b (20) from 15 January running, c (5) from
# 1 January to 1 March: January 0 -> 35 all new; February 35 -> 35; March loses c's 5.
EXPECTED = [
    ("2025-01", 0, 3, 0.0, 35.0, 0.0, 35.0),
    ("2025-02", 3, 3, 35.0, 0.0, 0.0, 35.0),
    ("2025-03", 3, 2, 35.0, 0.0, 5.0, 30.0),
]


@pytest.mark.parametrize(
    ("timezone", "date_format", "a", "b", "c"),
    [
        ("UTC", None, "2025-01-01,9999-12-31", "2025-01-15,", "2025-01-01,2025-03-01"),
        # a time on that day, with an offset or without, in any business time zone
        (
            "UTC",
            None,
            "2025-01-01,9999-12-31T23:00:00-05:00",
            "2025-01-15,",
            "2025-01-01,2025-03-01",
        ),
        (
            "America/New_York",
            None,
            "2025-01-01T12:00,9999-12-31 00:00:00+14:00",
            "2025-01-15T12:00,",
            "2025-01-01T12:00,2025-03-01T12:00",
        ),
        (
            "Pacific/Kiritimati",
            None,
            "2025-01-01T12:00,9999-12-31T23:59:59Z",
            "2025-01-15T12:00,",
            "2025-01-01T12:00,2025-03-01T12:00",
        ),
        (
            "UTC",
            None,
            "2025-01-01T08:00,9999-12-31T08:00",
            "2025-01-15T08:00,",
            "2025-01-01T08:00,2025-03-01T08:00",
        ),
        # day/month/year, detected or given
        ("UTC", None, "01/01/2025,31/12/9999", "15/01/2025,", "01/01/2025,01/03/2025"),
        (
            "UTC",
            "%d/%m/%Y %H:%M",
            "01/01/2025 09:00,31/12/9999 23:59",
            "15/01/2025 09:00,",
            "01/01/2025 09:00,01/03/2025 09:00",
        ),
        (
            "UTC",
            "%Y-%m-%d %H:%M %z",
            "2025-01-01 10:00 +0000,9999-12-31 23:00 -0500",
            "2025-01-15 10:00 +0000,",
            "2025-01-01 10:00 +0000,2025-03-01 10:00 +0000",
        ),
    ],
)
def test_an_end_of_9999_12_31_is_still_running(
    write_csv: Callable[..., Path],
    timezone: str,
    date_format: str | None,
    a: str,
    b: str,
    c: str,
) -> None:
    path = write_csv(f"{HEADER}\na,10,{a}\nb,20,{b}\nc,5,{c}", "subs.csv")
    loaded = load_subscriptions(path, timezone=timezone, date_format=date_format)
    ends = loaded.connection.execute(
        "SELECT customer_id, end_day FROM subscriptions ORDER BY customer_id"
    ).fetchall()
    assert ends == [("a", None), ("b", None), ("c", date(2025, 3, 1))]
    assert _rows(mrr(Subscriptions(loaded)).rows) == EXPECTED


def test_the_reported_file_gives_one_month(
    write_csv: Callable[..., Path], metrics_json: Callable[..., dict[str, Any]]
) -> None:
    path = write_csv(
        "customer_id,plan,mrr,start,end\nc1,basic,10,2025-01-01,9999-12-31\nc2,basic,20,2025-01-15,",
        "subs.csv",
    )
    out = metrics_json("mrr", "--subscriptions", str(path))
    assert _rows(out["rows"]) == [("2025-01", 0, 2, 0.0, 30.0, 0.0, 30.0)]


@pytest.mark.parametrize(
    ("timezone", "line", "column"),
    [
        ("UTC", "a,10,9999-12-31,", "start"),
        ("UTC", "a,10,9999-12-31T10:00,9999-12-31", "start"),
        ("UTC", "a,10,0000-06-01,", "start"),
        ("UTC", "a,10,2024-01-01 (BC),", "start"),
        ("UTC", "a,10,9998-12-31T23:30:00-05:00,", "start"),  # 9999-01-01 in UTC
        ("Europe/Paris", "a,10,9998-12-31T23:30:00+00:00,", "start"),  # 9999-01-01 in Paris
        ("UTC", "a,10,2025-01-01,9999-06-01", "end"),
        ("UTC", "a,10,2025-01-01,9999-12-30", "end"),
        ("UTC", "a,10,2025-01-01,9998-12-31T23:30:00-05:00", "end"),  # 9999-01-01 in UTC
    ],
)
def test_a_date_outside_the_supported_days_is_refused(
    write_csv: Callable[..., Path], timezone: str, line: str, column: str
) -> None:
    path = write_csv(f"{HEADER}\nb,5,2025-01-01,\n{line}", "subs.csv")
    value = line.split(",")[2 if column == "start" else 3]
    con = duckdb.connect()
    with pytest.raises(InputError) as err:
        load_subscriptions(path, timezone=timezone, connection=con)
    assert (err.value.file, err.value.row, err.value.column) == (str(path), 3, column)
    assert str(err.value) == (
        f"{path}, line 3, column '{column}': {REASON.format(timezone)}: '{value}'"
    )
    # nothing was loaded
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)


def test_an_end_on_the_last_supported_day_computes(write_csv: Callable[..., Path]) -> None:
    # 10 from 1 January 2025 to 31 December 9998 (exclusive): 7974 years, the last one
    # losing the 10 (the end, dated in 9998, counts in 9998), every one between flat
    path = write_csv(f"{HEADER}\na,10,2025-01-01,9998-12-31\nb,4,2025-06-01,2026-01-01", "subs.csv")
    rows = _rows(mrr(Subscriptions(load_subscriptions(path)), "year").rows)
    assert len(rows) == 9998 - 2025 + 1
    assert rows[:3] == [
        ("2025", 0, 2, 0.0, 14.0, 0.0, 14.0),
        ("2026", 2, 1, 14.0, 0.0, 4.0, 10.0),
        ("2027", 1, 1, 10.0, 0.0, 0.0, 10.0),
    ]
    assert rows[-1] == ("9998", 1, 0, 10.0, 0.0, 10.0, 0.0)
    assert set(rows[2:-1]) == {(r[0], 1, 1, 10.0, 0.0, 0.0, 10.0) for r in rows[2:-1]}
    assert [r[0] for r in rows] == [str(y) for y in range(2025, 9999)]
