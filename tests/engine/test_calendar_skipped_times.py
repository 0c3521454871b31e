"""Dates computed on a local time the zone skips (the hour of a spring-forward night)
are real instants: the date kept in memory reads the same local time as the one read
back from storage (UTC), so months added to either give the same next date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from fidelite.engine.calendar import (
    add_months,
    months_back,
    next_month_start,
    next_year_start,
    real_local,
    year_start,
)

PARIS = ZoneInfo("Europe/Paris")
ASUNCION = ZoneInfo("America/Asuncion")  # skipped midnight 2017-10-01 00:00 -> 01:00
CEST, CET = timezone(timedelta(hours=2)), timezone(timedelta(hours=1))


def stored(at: datetime) -> datetime:
    """``at`` as the database gives it back (UTC)."""
    return at.astimezone(UTC)


def test_months_added_into_the_skipped_hour_land_after_the_gap() -> None:
    upgraded = datetime(2027, 2, 28, 2, 30, tzinfo=CET)  # 28 March 02:30 is skipped
    review = add_months(upgraded, 1, PARIS)
    assert review == datetime(2027, 3, 28, 3, 30, tzinfo=CEST)
    assert (review.hour, review.minute, review.utcoffset()) == (3, 30, timedelta(hours=2))
    # The next review: the same whether from memory or from storage.
    again = datetime(2027, 4, 28, 3, 30, tzinfo=CEST)
    assert add_months(review, 1, PARIS) == again
    assert add_months(stored(review), 1, PARIS) == again


def test_either_fold_of_a_skipped_time_is_the_instant_after_the_gap() -> None:
    for fold in (0, 1):
        skipped = datetime(2027, 3, 28, 2, 30, tzinfo=PARIS, fold=fold)
        real = real_local(skipped)
        assert real == datetime(2027, 3, 28, 3, 30, tzinfo=CEST)
        assert (real.hour, real.minute) == (3, 30)


def test_times_the_zone_has_once_or_twice_are_kept() -> None:
    once = datetime(2027, 6, 1, 12, tzinfo=PARIS)
    assert real_local(once) == once and real_local(once).hour == 12
    for fold, offset in ((0, CEST), (1, CET)):  # fall-back night: both instants kept
        twice = datetime(2027, 10, 31, 2, 30, tzinfo=PARIS, fold=fold)
        # (Python never finds an ambiguous time equal to one in another zone: in UTC.)
        assert stored(real_local(twice)) == datetime(2027, 10, 31, 2, 30, tzinfo=offset)
        assert real_local(twice).fold == fold


def test_month_and_year_starts_on_a_skipped_midnight_are_after_the_gap() -> None:
    first = datetime(2017, 10, 1, 1, tzinfo=timezone(timedelta(hours=-3)))
    found = next_month_start(datetime(2017, 9, 15, 12, tzinfo=UTC), ASUNCION)
    assert found == first
    assert (found.hour, found.utcoffset()) == (1, timedelta(hours=-3))
    assert add_months(found, 1, ASUNCION) == add_months(stored(found), 1, ASUNCION)
    # Midnights that exist are unchanged.
    assert next_year_start(datetime(2027, 5, 1, tzinfo=UTC), PARIS) == datetime(
        2028, 1, 1, tzinfo=CET
    )
    assert year_start(datetime(2027, 5, 1, tzinfo=UTC), PARIS) == datetime(2027, 1, 1, tzinfo=CET)


def test_a_window_start_in_the_repeated_hour_is_the_later_instant() -> None:
    # 30 November (last day) goes back to 31 October, the fall-back day: 02:30 twice.
    start = months_back(datetime(2027, 11, 30, 2, 30, tzinfo=CET), 1, PARIS)
    assert stored(start) == datetime(2027, 10, 31, 2, 30, tzinfo=CET)
    assert start.fold == 1 and stored(real_local(start)) == stored(start)
    start = months_back(datetime(2027, 11, 28, 2, 30, tzinfo=CET), 1, PARIS)
    assert start == datetime(2027, 10, 28, 2, 30, tzinfo=CEST)
    assert start.fold == 0
