"""A return window that ends before the points can expire.

Points on hold (``pending``) cannot be spent, and the ledger refuses an earn whose hold
ends at or after its expiry date (``pending_until: must be earlier than expires_at``):
under ``expiry: {mode: after_earning}`` every purchase whose window reached its expiry
date would be refused when it arrives, and under ``mode: inactivity`` the points would
lapse while still on hold, never spendable. So a program whose ``pending.days`` can
reach the expiry date is refused when it is loaded, with the shortest span its expiry
policy can give and a purchase that has it.

Both dates keep the local wall-clock time of the event (:mod:`fidelite.engine.calendar`)
and a rounded expiry date is a local midnight, so the question is one of local calendar
days, whatever the zone: the hold ends before the expiry date for every event exactly
when ``days`` is below the fewest days from an event's local date to its expiry's.
Months are clamped (31 January + 1 month is 28 February) and leap years follow the
400-year Gregorian cycle (1 March 2097 + 48 months is 1 March 2101, 1460 days: 2100 has
no 29 February), which is what is scanned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from fidelite.program.model import Problems

FIRST_YEAR = 2025
"""The scan starts here, so the example given is the next one a business may meet."""
CYCLE_YEARS = 400
"""The Gregorian calendar repeats every 400 years."""
MAX_MONTHS = 240
"""The longest expiry policy (``expiry.months``)."""


@dataclass(frozen=True)
class ShortestSpan:
    """The fewest local days from an event's date to its expiry date, and one event
    date (the first from :data:`FIRST_YEAR`) at which points have it."""

    days: int
    earned: date
    expires: date


def _month_starts() -> list[int]:
    """The ordinals of the first days of every month from :data:`FIRST_YEAR` on, far
    enough for a 400-year cycle of events plus the longest policy and a year."""
    starts = []
    for year in range(FIRST_YEAR, FIRST_YEAR + CYCLE_YEARS + MAX_MONTHS // 12 + 2):
        for month in range(1, 13):
            starts.append(date(year, month, 1).toordinal())
    return starts


@lru_cache(maxsize=64)
def shortest_span(months: int, rounding: str) -> ShortestSpan:
    """The shortest span of ``months`` calendar months (``rounding``: ``none``, or the
    expiry date pushed to the next ``end_of_month`` / ``end_of_year`` start).

    Without rounding the span from day ``d`` of a month is that month's days to the
    same day ``months`` later, less what clamping takes from a ``d`` past the target
    month's end: the last day of the month gives the least. With rounding, the expiry
    date is the first day of a month (the one after the target month, or the next
    January), the same for every day of the event's month: its last day is nearest.
    """
    starts = _month_starts()
    best: ShortestSpan | None = None
    for i in range(CYCLE_YEARS * 12):
        length = starts[i + 1] - starts[i]
        last = starts[i + 1] - 1  # the event month's last day: the worst in every case
        target = i + months
        if rounding == "none":
            target_length = starts[target + 1] - starts[target]
            expires = starts[target] + min(length, target_length) - 1
        elif rounding == "end_of_month":
            expires = starts[target + 1]
        else:  # end_of_year: the January after the target month
            expires = starts[target + 12 - target % 12]
        days = expires - last
        if best is None or days < best.days:
            best = ShortestSpan(days, date.fromordinal(last), date.fromordinal(expires))
    assert best is not None
    return best


def hold_problems(program: Mapping[str, Any]) -> Problems:
    """``pending.days`` is below the shortest span of the expiry policy, if both are
    set and valid (a broken field is reported at that field, not here).

    ``program`` is the program's fields, validated (dumped) or as written.
    """
    pending, expiry = program.get("pending"), program.get("expiry")
    if not isinstance(pending, Mapping) or not isinstance(expiry, Mapping):
        return
    days, months = _whole(pending.get("days"), 1, 365), _whole(expiry.get("months"), 1, MAX_MONTHS)
    mode, rounding = expiry.get("mode"), expiry.get("rounding", "none")
    if days is None or months is None or not isinstance(rounding, str):
        return
    rounding = str(rounding)  # a validated policy's enum: its value
    if days < 28 * months - 3:  # no span of N months is shorter (28 x N days less a clamp)
        return
    if mode == "after_earning" and rounding in ("none", "end_of_month", "end_of_year"):
        span = shortest_span(months, rounding)
        rounded = "" if rounding == "none" else f", rounding: {rounding}"
        what = (
            f"points expire as soon as {span.days} days after they are earned (earned on"
            f" {span.earned.isoformat()}, they expire on {span.expires.isoformat()}),"
            " and an earn whose hold ends at or after its expiry date is refused"
            " (pending_until: must be earlier than expires_at)"
        )
        setting = f"expiry mode after_earning, months: {months}{rounded}"
    elif mode == "inactivity" and rounding == "none":
        span = shortest_span(months, "none")
        what = (
            f"points lapse as soon as {span.days} days after the member's last activity"
            f" (active on {span.earned.isoformat()}, they lapse on"
            f" {span.expires.isoformat()}), so points still on hold would lapse before"
            " they could be spent"
        )
        setting = f"expiry mode inactivity, months: {months}"
    else:
        return
    if days < span.days:
        return
    yield (
        ("pending", "days"),
        (
            f"{days} days on hold can reach the expiry date: under {setting}, {what};"
            f" set pending.days to at most {span.days - 1}, or lengthen expiry.months"
        ),
    )


def _whole(value: object, low: int, high: int) -> int | None:
    """``value`` if it is a whole number from ``low`` to ``high``, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None
