"""A return window (``pending.days``) that can reach the expiry date is refused when the
program is loaded: the ledger refuses an earn whose hold ends at or after its expiry
date, so every purchase on the worst days used to be refused at processing
(``invalid_request pending_until: must be earlier than expires_at``), and under
inactivity the points lapsed while still on hold. The shortest span counts month
clamping (31 January + 1 month is 28 February) and end-of-month/year rounding."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fidelite.engine.expiry import expires_at, pending_until
from fidelite.program import ProgramError, load_program, parse_program
from fidelite.program.policy import ExpiryPolicy, PendingPolicy

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry:
  mode: %(mode)s
  months: %(months)s%(rounding)s
pending:
  days: %(days)s
  event_types: [purchase]
"""


def program(mode: str, months: int, days: int, rounding: str | None = None) -> str:
    extra = f"\n  rounding: {rounding}" if rounding else ""
    return PROGRAM % {"mode": mode, "months": months, "days": days, "rounding": extra}


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


AFTER_1 = (
    "under expiry mode after_earning, months: 1, points expire as soon as 28 days after"
    " they are earned (earned on 2025-01-31, they expire on 2025-02-28), and an earn whose"
    " hold ends at or after its expiry date is refused (pending_until: must be earlier"
    " than expires_at); set pending.days to at most 27, or lengthen expiry.months"
)


def test_the_reports_programs_are_refused_at_the_pending_days_line(tmp_path: Path) -> None:
    # e2 of the report: 1 month, 28 days; a purchase on 31 January was refused.
    file = tmp_path / "e2.yaml"
    file.write_text(program("after_earning", 1, 28), encoding="utf-8")
    with pytest.raises(ProgramError) as info:
        load_program(file)
    assert [str(p) for p in info.value.problems] == [
        f"{file}:12:9: pending.days: 28 days on hold can reach the expiry date: " + AFTER_1
    ]
    # e3: 3 months, 90 days (31 January to 30 April is only 89 days).
    assert problems(program("after_earning", 3, 90)) == [
        "p.yaml:12:9: pending.days: 90 days on hold can reach the expiry date: under expiry"
        " mode after_earning, months: 3, points expire as soon as 89 days after they are"
        " earned (earned on 2025-01-31, they expire on 2025-04-30), and an earn whose hold"
        " ends at or after its expiry date is refused (pending_until: must be earlier than"
        " expires_at); set pending.days to at most 88, or lengthen expiry.months"
    ]
    assert problems(program("after_earning", 1, 45)) == [
        "p.yaml:12:9: pending.days: 45 days on hold can reach the expiry date: " + AFTER_1
    ]


def test_rounded_expiry_dates_are_counted_to_their_midnight() -> None:
    assert problems(program("after_earning", 1, 29, "end_of_month")) == [
        "p.yaml:13:9: pending.days: 29 days on hold can reach the expiry date: under expiry"
        " mode after_earning, months: 1, rounding: end_of_month, points expire as soon as"
        " 29 days after they are earned (earned on 2025-01-31, they expire on 2025-03-01),"
        " and an earn whose hold ends at or after its expiry date is refused (pending_until:"
        " must be earlier than expires_at); set pending.days to at most 28, or lengthen"
        " expiry.months"
    ]
    assert problems(program("after_earning", 1, 32, "end_of_year")) == [
        "p.yaml:13:9: pending.days: 32 days on hold can reach the expiry date: under expiry"
        " mode after_earning, months: 1, rounding: end_of_year, points expire as soon as"
        " 32 days after they are earned (earned on 2025-11-30, they expire on 2026-01-01),"
        " and an earn whose hold ends at or after its expiry date is refused (pending_until:"
        " must be earlier than expires_at); set pending.days to at most 31, or lengthen"
        " expiry.months"
    ]


def test_inactivity_shorter_than_the_window_is_refused() -> None:
    # f of the report: 1 month of inactivity, 45 days on hold.
    assert problems(program("inactivity", 1, 45)) == [
        "p.yaml:12:9: pending.days: 45 days on hold can reach the expiry date: under expiry"
        " mode inactivity, months: 1, points lapse as soon as 28 days after the member's"
        " last activity (active on 2025-01-31, they lapse on 2025-02-28), so points still"
        " on hold would lapse before they could be spent; set pending.days to at most 27,"
        " or lengthen expiry.months"
    ]


@pytest.mark.parametrize(
    ("mode", "months", "rounding", "days"),
    [
        ("after_earning", 1, None, 27),
        ("after_earning", 3, None, 88),
        ("after_earning", 1, "end_of_month", 28),
        ("after_earning", 1, "end_of_year", 31),
        ("after_earning", 12, None, 364),
        ("after_earning", 11, "end_of_month", 334),
        ("inactivity", 1, None, 27),
    ],
)
def test_one_day_less_than_the_shortest_span_is_accepted(
    mode: str, months: int, rounding: str | None, days: int
) -> None:
    loaded = parse_program(program(mode, months, days, rounding))
    assert loaded.pending.days == days
    assert problems(program(mode, months, days + 1, rounding))[0].startswith(
        f"p.yaml:{13 if rounding else 12}:9: pending.days: {days + 1} days on hold"
    )


def test_never_expiring_points_take_any_window() -> None:
    text = PROGRAM.replace(
        "  mode: %(mode)s\n  months: %(months)s%(rounding)s\n", "  mode: never\n"
    )
    assert parse_program(text % {"days": 365}).pending.days == 365


@pytest.mark.parametrize("rounding", ["none", "end_of_month", "end_of_year"])
@pytest.mark.parametrize("months", [1, 2, 3, 12])
def test_the_shortest_span_is_what_the_engine_gives(months: int, rounding: str) -> None:
    """Every local day of 2025-2029 (a leap year in it), at 23:30 and 00:30 in Paris:
    a hold one day shorter than the span ends before the expiry date, and some day's
    hold of the span itself does not."""
    from fidelite.program.holds import shortest_span

    zone = ZoneInfo("Europe/Paris")
    policy = ExpiryPolicy(mode="after_earning", months=months, rounding=rounding)  # type: ignore[arg-type]
    span = shortest_span(months, rounding)
    # model_construct: 366 days is above the field's limit, not above the engine's
    shorter = PendingPolicy.model_construct(days=span.days - 1, event_types=["purchase"])
    exact = PendingPolicy.model_construct(days=span.days, event_types=["purchase"])
    reached = []
    day = date(2025, 1, 1)
    while day < date(2030, 1, 1):
        for hour, minute in ((0, 30), (23, 30)):
            at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            expiry = expires_at(policy, at, zone)
            assert expiry is not None
            held = pending_until(shorter, "purchase", at, zone)
            assert held is not None and held < expiry, at
            if pending_until(exact, "purchase", at, zone) >= expiry:  # type: ignore[operator]
                reached.append(day)
        day += timedelta(days=1)
    assert span.earned in reached
