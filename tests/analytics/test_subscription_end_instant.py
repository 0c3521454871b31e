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
