"""A birth date before 1900-01-01 (a CRM's placeholder 0001-01-01, a typing mistake
1850) is refused by the profile check the API and the members import share: it was
stored, and birthday rules would celebrate it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fidelite.engine.member import EARLIEST_BIRTH, profile_problems

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TOO_EARLY = ("is before 1900-01-01, the earliest birth date accepted (a placeholder for an "
             "unknown date is no birth date: leave it empty)")  # fmt: skip


def problems(born: date) -> list[tuple[tuple[str, ...], str]]:
    paris, tolerance = ZoneInfo("Europe/Paris"), timedelta(minutes=5)
    return profile_problems(joined_at=None, birth_date=born, now=NOW, zone=paris,
                            tolerance=tolerance)  # fmt: skip


@pytest.mark.parametrize("born", [date(1, 1, 1), date(1850, 6, 1), date(1899, 12, 31)])
def test_a_birth_before_1900_is_refused(born: date) -> None:
    assert problems(born) == [(("birth_date",), f"{born.isoformat()} {TOO_EARLY}")]


@pytest.mark.parametrize("born", [date(1900, 1, 1), date(1990, 5, 17), date(2026, 12, 7)])
def test_a_birth_from_1900_to_today_is_accepted(born: date) -> None:
    assert problems(born) == []
    assert date(1900, 1, 1) == EARLIEST_BIRTH
