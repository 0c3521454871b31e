"""A subscription ending before it starts is judged on instants, not local days.

A start at 10:00 and an end at 09:00 the same day was accepted (the same local day),
and a pair with offsets (23:30 UTC, then 00:30+02:00 the next day: 22:30 UTC) was
refused in Paris but accepted in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.mrr import Subscriptions, mrr
from fidelite.analytics.subscriptions import load_subscriptions

HEADER = "customer_id,mrr,start,end"


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Paris"])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-01T10:00", "2024-01-01T09:00"),
        ("2024-01-01T23:30+00:00", "2024-01-02T00:30+02:00"),
    ],
)
def test_an_end_before_the_start_time_is_refused_in_any_time_zone(
    write_csv: Callable[..., Path], timezone: str, start: str, end: str
) -> None:
    path = write_csv(f"{HEADER}\nb,5,2024-01-01,\na,10,{start},{end}", "s.csv")
    with pytest.raises(InputError) as err:
        load_subscriptions(path, timezone=timezone)
    assert (err.value.row, err.value.column) == (3, "end")
    assert str(err.value) == (
        f"{path}, line 3, column 'end': end date before the start date: '{end}'"
    )


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Paris"])
def test_an_end_at_or_after_the_start_instant_is_accepted(
    write_csv: Callable[..., Path], timezone: str
) -> None:
    # 10:00 to 10:00 (nothing runs); 23:30 UTC to 01:30+02:00 the next day (23:30 UTC)
    rows = [
        "a,10,2024-01-01T10:00,2024-01-01T10:00",
        "b,5,2024-01-01T23:30+00:00,2024-01-02T01:30+02:00",
    ]
    loaded = load_subscriptions(write_csv(HEADER + "\n" + "\n".join(rows), "s.csv"),
                                timezone=timezone)  # fmt: skip
    assert loaded.rows == 2


def test_an_end_written_as_a_day_covers_that_day(write_csv: Callable[..., Path]) -> None:
    """A start with a time and a same-day end written as a day (the file's own way of
    saying "ended that day") loaded before and is accepted again; an end day before the
    start day is still refused."""
    ok = write_csv(f"{HEADER}\na,10,2026-01-10T10:00:00+00:00,2026-01-10\n"
                   "b,5,2026-01-10,2026-01-10", "ok.csv")  # fmt: skip
    assert load_subscriptions(ok, timezone="UTC").rows == 2
    bad = write_csv(f"{HEADER}\na,10,2026-01-10T10:00:00+00:00,2026-01-09", "bad.csv")
    with pytest.raises(InputError) as err:
        load_subscriptions(bad, timezone="UTC")
    assert (err.value.row, err.value.column) == (2, "end")


def test_an_mrr_too_large_to_sum_exactly_is_refused(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"{HEADER}\na,1e33,2026-01-10,", "big.csv")
    with pytest.raises(InputError) as err:
        load_subscriptions(path, timezone="UTC")
    assert str(err.value) == (
        f"{path}, line 2, column 'mrr': mrr of 10^23 or more (too large to sum exactly): '1e33'"
    )
    # many rows just under the limit sum without overflow
    rows = "".join(f"c{i},90000000000000000000000,2024-01-01,\n" for i in range(300))
    many = write_csv(f"{HEADER}\n{rows}", "many.csv")
    result = mrr(Subscriptions(load_subscriptions(many, timezone="UTC"), "duckdb"), "month")
    assert result.to_dict()["rows"][0]["ending_mrr"] == 2.7e25
