"""What the engine knows about a member when it evaluates an event.

The store assembles this snapshot; the engine never reads anything else, which is
what makes a decision reproducible from (program, member state, event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fidelite.engine.event import EARLIEST, AttributeValue

EARLIEST_BIRTH = date(1900, 1, 1)
"""Earliest birth date a member's profile is given: an earlier one (``0001-01-01``, a
CRM's placeholder for an unknown date, or ``1850-06-01``) is no living person's, and
birthday rules would celebrate it."""


@dataclass(frozen=True)
class MemberState:
    """A member's state before the event.

    ``rule_points`` holds the points each rule already gave this member in a cap period,
    keyed by ``(rule_id, period_key)`` (see :func:`fidelite.engine.period.period_key`).
    """

    ref: str
    tier: str | None = None
    segments: frozenset[str] = frozenset()
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    purchases: int = 0
    joined_at: datetime | None = None
    birth_date: date | None = None
    rule_points: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgramState:
    """Program-wide counters: points each budgeted rule has given so far."""

    budget_used: Mapping[str, int] = field(default_factory=dict)


def profile_problems(
    *,
    joined_at: datetime | None,
    birth_date: date | None,
    now: datetime,
    zone: ZoneInfo,
    tolerance: timedelta,
    joins: bool = True,
    stored_birth: date | None = None,
) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with a member's profile as a client gives it (API and import alike),
    each problem with its field: ``joined_at`` before :data:`~fidelite.engine.event.
    EARLIEST` or, when the member ``joins`` with it (a new member: an existing one keeps
    its join date, the value is ignored), later than ``now`` plus the program's
    ``tolerance`` (the one events dated in the future get: a member who joins later
    would lose their first-purchase bonus on purchases before that), a ``birth_date``
    before :data:`EARLIEST_BIRTH` (unless it is the member's ``stored_birth``: a date
    stored before the limit, repeated by a re-run file or a re-sent request, changes
    nothing) or after today in ``zone`` (attributes:
    :func:`~fidelite.engine.event.read_attributes`, shared as well). A time before 1970
    is refused whoever the member: it is no time at all for the program, a typing or
    export mistake. Empty: none."""
    problems: list[tuple[tuple[str, ...], str]] = []
    if joined_at is not None:
        if joined_at < EARLIEST:
            problems.append((("joined_at",), f"{joined_at.isoformat()} is before "
                             "1970-01-01T00:00:00Z, the earliest time accepted"))  # fmt: skip
        elif joins and joined_at - now > tolerance:
            minutes = int(tolerance.total_seconds() // 60)
            problems.append((("joined_at",), (
                f"{joined_at.isoformat()} is in the future: later than now "
                f"({now.isoformat(timespec='seconds')}) plus the program's tolerance of "
                f"{minutes} minute(s) (future_tolerance_minutes)"
            )))  # fmt: skip
    if birth_date is not None:
        today = now.astimezone(zone).date()
        if birth_date < EARLIEST_BIRTH and birth_date != stored_birth:
            problems.append((("birth_date",), f"{birth_date.isoformat()} is before "
                             f"{EARLIEST_BIRTH.isoformat()}, the earliest birth date accepted "
                             "(a placeholder for an unknown date is no birth date: leave it "
                             "empty)"))  # fmt: skip
        elif birth_date > today:
            problems.append((("birth_date",), f"{birth_date.isoformat()} is after today "
                             f"({today.isoformat()} in {zone.key})"))  # fmt: skip
    return problems


MAX_SEGMENTS = 50
"""Most segment names a member's profile is given at once, in the API and the import."""


def segment_set(names: list[str]) -> list[str]:
    """A member's segments as kept: each name once, sorted (``["vip", "vip"]`` is
    ``["vip"]``), whether given through the API or the members import."""
    return sorted(set(names))
