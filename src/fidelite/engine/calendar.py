"""Calendar arithmetic in a program's time zone (months, month and year starts), and
the calendar's ends: Python dates run from year 1 to year 9999, so a date typed or sent
at either end, or computed from one, may fall outside it (an instant whose UTC time is
in year 0, an expiry months after December 9999)."""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pydantic_core import TzInfo

FIRST = datetime.min.replace(tzinfo=UTC)
"""The calendar's first instant (0001-01-01T00:00:00Z)."""
LAST = datetime.max.replace(tzinfo=UTC)
"""The calendar's last instant (9999-12-31T23:59:59.999999Z)."""


def in_utc(at: datetime) -> datetime:
    """``at`` (aware) in UTC; ``ValueError`` naming it if that falls outside the calendar
    (0001-01-01T00:00:00+05:00 is in year 0 in UTC, 9999-12-31T23:00:00-05:00 in 10000)."""
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{at.isoformat()} is outside the calendar once in UTC") from None


def fixed_offset(at: datetime) -> datetime:
    """``at`` (aware) with its UTC offset at that instant as a fixed offset: the same
    instant, written the same way, on which ``+`` and ``<`` are in elapsed time.

    A time whose zone is named (``tzinfo`` a ``ZoneInfo``, as pyarrow gives a Parquet
    column typed ``timestamp[us, tz=Europe/Paris]``) is added to in that zone's
    wall-clock time by Python, so a step in elapsed time across a change of offset
    lands an hour off, and two such times in the repeated hour of a fall-back night
    compare by wall clock, ignoring ``fold`` (01:10Z reads as before 00:45Z). A fixed
    offset (``datetime.timezone``, or pydantic's parsed ``TzInfo``) is returned as is."""
    zone = at.tzinfo
    if isinstance(zone, timezone | TzInfo):
        return at
    offset = at.utcoffset()
    if offset is None:
        raise ValueError(f"{at.isoformat()} has no UTC offset")
    return at.replace(tzinfo=timezone(offset), fold=0)


def shifted(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, stopped at the calendar's first or last instant: a window that
    would reach past either end (30 days after 9999-12-20) ends there. The offset of
    ``at`` is kept unless its local time is what leaves the calendar. ``delta`` is
    elapsed time even if ``at``'s zone is named (see :func:`fixed_offset`)."""
    fixed = fixed_offset(at)
    if fixed is not at:
        return within_zone(shifted(fixed, delta), at)
    try:
        return at + delta
    except OverflowError:
        pass
    try:
        return at.astimezone(UTC) + delta
    except OverflowError:
        return LAST if delta > timedelta(0) else FIRST


def add_days(
    at: datetime, days: timedelta, zone: ZoneInfo, local: datetime | None = None
) -> datetime:
    """``at`` plus ``days`` (whole days) of ``zone``'s calendar: the same local wall-clock
    time that many days later, as :func:`add_months` keeps it, so a hold of 14 days from
    2026-10-20T10:00+02:00 in Europe/Paris ends at 2026-11-03T10:00+01:00 (24-hour steps
    would end it at 09:00, an hour early, across the change to winter time).

    A local time the zone skips (02:30 on a spring-forward day) or has twice (02:30 on a
    fall-back day) is read as :func:`add_months` reads it: with the fold of ``at``'s own
    local time (``fold=0``: the offset before the change). The result keeps ``at``'s
    offset (the instant is what matters), and like :func:`shifted` stops at the
    calendar's first or last instant. ``local`` is ``at`` in ``zone`` if the caller has it.
    For many events, :class:`LocalDays` is faster. A time whose own zone is named (not a
    fixed offset) is counted in elapsed time too (see :func:`fixed_offset`), the result
    given back in that zone.
    """
    fixed = fixed_offset(at)
    if fixed is not at:
        return within_zone(add_days(fixed, days, zone, local), at)
    end = shifted(at, days)
    try:
        if local is None:
            local = at.astimezone(zone)
        wall = local + days
    except (OverflowError, ValueError):  # past the calendar in the zone: end there
        return end
    if wall.utcoffset() == local.utcoffset():
        return end
    try:
        return wall.replace(fold=local.fold).astimezone(at.tzinfo)
    except (OverflowError, ValueError):
        return end


def within_zone(result: datetime, at: datetime) -> datetime:
    """``result`` in ``at``'s zone, or as it is if that is outside the calendar."""
    try:
        return result.astimezone(at.tzinfo)
    except (OverflowError, ValueError):
        return result


class LocalDays:
    """:func:`add_days` of one number of days in one zone, at about the cost of
    :func:`shifted` (it runs for every pending earning: rule evaluation's hot path).

    The answer only depends on the zone's offset at the event and at its end: it is
    ``at + days + (offset at the event - offset at the end)``. So the zone's offset is
    read once per day (at noon UTC, a block of 512 days at a time, as events reach it)
    and each day gets its step: ``days`` where the offset is the same at both ends (24
    hours a day), ``days`` less the change where a change lies surely between them. An
    event finds its step by its date in its own offset (``toordinal``, far cheaper than
    a conversion), which is within a day of its UTC date. Only the events within two
    days of a change, at either end (about 10 days a year for one change a season),
    take the zone arithmetic, which also reads a skipped or repeated local time as
    :func:`add_days` does. A zone that would change its offset and change it back
    between two noons (none does) would be missed."""

    BLOCK = 9  # blocks of 2**9 days

    def __init__(self, zone: ZoneInfo, days: timedelta) -> None:
        self.zone = zone
        self.days = days
        self._span = days.days
        self._steps: dict[int, timedelta | None] = {}  # None: near a change

    def add(self, at: datetime) -> datetime:
        """``add_days(at, days, zone)``."""
        fixed = fixed_offset(at)
        if fixed is not at:  # a named zone: Python would add in its wall-clock time
            return within_zone(self.add(fixed), at)
        day = at.toordinal()
        try:
            step = self._steps[day]
        except KeyError:
            self._read_block(day >> self.BLOCK)
            step = self._steps[day]
        if step is not None:
            try:
                return at + step
            except OverflowError:
                pass
        return add_days(at, self.days, self.zone)

    def _read_block(self, block: int) -> None:
        first = block << self.BLOCK
        last = first + (1 << self.BLOCK) - 1
        span = self._span
        # offsets[i]: at noon UTC of day first - 3 + i; changed[i]: a change after it,
        # by the next noon (or a day outside the calendar, which only add_days handles).
        offsets = [self._offset(day) for day in range(first - 3, last + span + 4)]
        changed = [a is None or b is None or a != b for a, b in itertools.pairwise(offsets)]
        for day in range(first, last + 1):
            i = day - first + 3  # day's index in offsets
            near = any(changed[i - 3 : i + 3]) or any(changed[i + span - 3 : i + span + 3])
            start, end = offsets[i], offsets[i + span]
            if near or start is None or end is None:
                self._steps[day] = None
            else:
                self._steps[day] = self.days + (start - end)

    def _offset(self, day: int) -> timedelta | None:
        """The zone's offset at noon UTC of ``day`` (None: outside the calendar)."""
        try:
            noon = datetime.fromordinal(day).replace(hour=12, tzinfo=UTC)
            return noon.astimezone(self.zone).utcoffset()
        except (OverflowError, ValueError):
            return None


def local_bounds(earliest: datetime, latest: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Two instants, one at or before ``earliest`` and one at or after ``latest``, whose
    local times in ``zone`` are at or before, and at or after, the local time of every
    instant from ``earliest`` to ``latest``.

    Local time moves on with time except when the clocks go back: in the repeated hour
    of a fall-back night, 02:50+02:00 comes before 02:10+01:00 but reads later. So the
    bounds are ``earliest`` and ``latest`` themselves unless the clocks go back within a
    day after ``earliest`` or before ``latest`` (by then local time has caught up with
    any earlier reading); then they are moved by as much as the clocks went back. Zones
    change their offset at most once a day (two changes a day would be missed)."""
    day = timedelta(days=1)
    first_back = _offset(earliest, zone) - _offset(min(latest, shifted(earliest, day)), zone)
    last_back = _offset(max(earliest, shifted(latest, -day)), zone) - _offset(latest, zone)
    low = shifted(earliest, -first_back) if first_back > timedelta(0) else earliest
    high = shifted(latest, last_back) if last_back > timedelta(0) else latest
    return low, high


def _offset(at: datetime, zone: ZoneInfo) -> timedelta:
    """``zone``'s UTC offset at the instant ``at``."""
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def within(compute: Callable[[], datetime]) -> datetime | None:
    """A date computed from another (months later, the next month or year start, the
    local time in a zone), or None when it falls outside the calendar: no such date can
    be written, so the caller treats it as never reached."""
    try:
        return compute()
    except (ValueError, OverflowError):
        return None


def add_months(at: datetime, months: int, zone: ZoneInfo) -> datetime:
    """``at`` plus ``months`` calendar months in ``zone``; the day is clamped (Jan 31 + 1 = Feb 28).

    Wall-clock time is kept, so a date across a DST change keeps its local hour. A local
    time the zone skips (02:30 on a spring-forward night) becomes the instant after the
    gap, as far after it as it was into it (03:30 on a one-hour jump; see
    :func:`real_local`): the date read back from storage is the one kept in memory, so
    months added to it again give the same date either way.
    """
    local = at.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return real_local(local.replace(year=year, month=month, day=day))


def real_local(local: datetime) -> datetime:
    """``local`` (aware) as the instant it stands for, in its own zone, as a round trip
    through UTC (what storage does) reads it back: a local time the zone has once is
    kept; one it has twice (a fall-back night) keeps its fold; one it skips (02:30 on
    a spring-forward night) is read with the offset before the jump, so it becomes the
    local time as far after the gap as it was into it (03:30 on a one-hour jump), the
    same for either fold. As it is if that falls outside the calendar.

    Invariant: ``real_local(t)`` and ``t`` read back from storage have the same local
    time, so calendar arithmetic on either (months added, kept wall-clock time) agrees.
    """
    zone = local.tzinfo
    try:
        real = local.astimezone(UTC).astimezone(zone)
        if real.replace(tzinfo=None, fold=0) != local.replace(tzinfo=None, fold=0):
            real = local.replace(fold=0).astimezone(UTC).astimezone(zone)  # skipped
    except (OverflowError, ValueError):
        return local
    return real


def months_back(at: datetime, months: int, zone: ZoneInfo) -> datetime:
    """Where a window of ``months`` calendar months ending at ``at`` starts (excluded):
    the last instant that is ``months`` or more months before ``at`` as
    :func:`add_months` counts (day clamped, local clock time kept), so that
    ``months_back(add_months(u, months), months) >= u`` for every ``u``: an activity
    ``months`` old has left the window, even when adding the months clamped its day.

    In ``zone``'s calendar, at ``at``'s clock time: the same day ``months`` earlier; on
    the last day of that month when ``at`` is on the last day of its own (2025-02-28
    goes back to 2024-02-29 and, a month, to 2025-01-31); at the very end of that month
    when it has no such day (2025-03-30 goes back a month to the end of February). A
    local time the zone has twice (a fall-back night) is the later of the two, one it
    skips (a spring-forward night) the last instant before the jump: every instant whose
    local time is at or before the start has left the window. The start never goes back
    as ``at`` moves on in local time."""
    local = at.astimezone(zone)
    index = local.month - 1 - months
    year, month = local.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if local.day > last:  # no such day then: all of that month has left
        wall = datetime(year, month, last, 23, 59, 59, 999999)
    else:
        now_last = calendar.monthrange(local.year, local.month)[1]
        day = last if local.day == now_last else local.day
        wall = datetime.combine(date(year, month, day), local.time())
    return latest_at_or_before(wall, zone)


def latest_at_or_before(wall: datetime, zone: ZoneInfo) -> datetime:
    """The last instant whose local time in ``zone`` is at or before ``wall`` (naive): the
    later of two on a fall-back night, the last instant before the jump when ``zone``
    skips ``wall`` (a spring-forward night). A real instant (as :func:`real_local` gives
    it): its fold is 1 only on a local time the zone has twice."""
    wall = wall.replace(tzinfo=None, fold=0)
    later = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).astimezone(zone)
    if later.replace(tzinfo=None, fold=0) == wall:
        return later
    # Skipped: the jump lies between the two readings of ``wall``; find its instant.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # local time before ``wall``
    high = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # local time after it
    if high < low:
        low, high = high, low
    step = timedelta(microseconds=1)
    while high - low > step:
        middle = low + (high - low) // 2
        if _local(middle, zone) <= wall:
            low = middle
        else:
            high = middle
    return low.astimezone(zone)


def _local(at: datetime, zone: ZoneInfo) -> datetime:
    """``at``'s local wall-clock time in ``zone``, naive."""
    return at.astimezone(zone).replace(tzinfo=None, fold=0)


def next_month_start(at: datetime, zone: ZoneInfo) -> datetime:
    """Midnight (in ``zone``) of the first day of the month after ``at``'s month (the
    instant after the gap if ``zone`` skips that midnight; see :func:`real_local`)."""
    local = at.astimezone(zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return real_local(datetime(year, month, 1, tzinfo=zone))


def next_year_start(at: datetime, zone: ZoneInfo) -> datetime:
    """Midnight (in ``zone``) of 1 January of the year after ``at``'s year (the instant
    after the gap if ``zone`` skips that midnight; see :func:`real_local`)."""
    return real_local(datetime(at.astimezone(zone).year + 1, 1, 1, tzinfo=zone))


def year_start(at: datetime, zone: ZoneInfo) -> datetime:
    """Midnight (in ``zone``) of 1 January of ``at``'s year (the instant after the gap
    if ``zone`` skips that midnight; see :func:`real_local`)."""
    return real_local(datetime(at.astimezone(zone).year, 1, 1, tzinfo=zone))
