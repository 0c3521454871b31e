"""Expiry by inactivity: what a member did, and which of their points lapsed.

Under an ``expiry: {mode: inactivity, months: N}`` policy lots carry no expiry date;
all of a member's points lapse N months after their last **activity**, which is any of:

* a ledger ``earn`` (pending or not), ``spend`` or ``adjust`` transaction of the member,
  in any currency, at its business time (``occurred_at``), even if later reversed: the
  member bought, redeemed, or the business credited or corrected them by hand;
* an event processed for the member, of any type except ``refund`` — a purchase or an
  action that earned nothing still counts (the engagement metric's "interaction").

Releases of pending points, reversals, refunds and expiries are not activity: they
happen *to* the member's points, not because the member (or the business) acted.

Every lot is created by an activity (an earn or a credit adjustment), so "the points
earned at or before the last activity before the deadline" are exactly the points the
member held at the deadline. The expiry job (:meth:`fidelite.ledger.Ledger.expire`)
finds candidates in one read, then, per member and currency, recomputes the lapse
under the member's lock before it moves anything, so an activity recorded meanwhile
is taken into account and nothing expires twice.

Points lapse at the deadline, not when the job runs: given the policy, a spend or a
debit adjustment computes the same lapse (:func:`member_lapse`) under the same lock and
refuses the lapsed points, and the balance leaves them out, as both do for lots past
their expiry date. Moving them out stays the job's: a refused spend writes nothing.
Before the deadline, the balance counts the points it will take as expiring then
(:func:`coming_lapse`), as it counts dated lots at their date.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, text

from fidelite.engine.calendar import shifted
from fidelite.engine.expiry import Lapse, inactivity_deadline, inactivity_lapse
from fidelite.ledger.state import (
    HOLD_ENDED,
    SPENDING_ORDER,
    OpenLot,
    ended_hold_lots,
    member_debt,
    released_shares,
)
from fidelite.program.policy import ExpiryMode, ExpiryPolicy
from fidelite.store.tables import UTCDateTime

ACTIVITY_KINDS = "('earn', 'spend', 'adjust')"
"""Ledger transaction kinds that are the member's activity (SQL list)."""

_T = UTCDateTime()


def _times(*names: str) -> list[Any]:
    return [bindparam(name, type_=_T) for name in names]


_MEMBER_ACTIVITY = (
    text(
        "SELECT occurred_at AS at FROM ledger_transactions WHERE member_id = :m "
        f"AND kind IN {ACTIVITY_KINDS} AND occurred_at >= :since AND occurred_at <= :at "
        "UNION ALL "
        "SELECT occurred_at FROM processed_events WHERE program_id = :p AND member_ref = :r "
        "AND type <> 'refund' AND occurred_at >= :since AND occurred_at <= :at "
        "ORDER BY 1"
    )
    .bindparams(*_times("since", "at"))
    .columns(at=_T)
)

_OLDEST_HELD = (
    text(
        "SELECT MIN(earned_at) AS since FROM lots WHERE member_id = :m AND currency = :c "
        f"AND (state = 'available' OR ({HOLD_ENDED}))"
    )
    .bindparams(*_times("at"))
    .columns(since=_T)
)

_LAPSED_LOTS = (
    text(
        "SELECT id, remaining, state, expires_at FROM lots WHERE member_id = :m "
        "AND currency = :c AND state = 'available' AND earned_at <= :last "
        f"ORDER BY {SPENDING_ORDER}"
    )
    .bindparams(*_times("last"))
    .columns(expires_at=_T)
)

# Held by the expiry job: available lots and pending ones whose hold has ended at
# :at (the job releases them before it expires, Ledger.expire).
_HELD = (
    text(
        "SELECT l.member_id, m.ref, l.currency, MIN(l.earned_at) AS since FROM lots l "
        "JOIN members m ON m.id = l.member_id WHERE l.program_id = :p "
        "AND (l.state = 'available' OR (l.state = 'pending' AND l.pending_until <= :at)) "
        "AND l.earned_at <= :h "
        "GROUP BY l.member_id, m.ref, l.currency ORDER BY l.member_id, l.currency"
    )
    .bindparams(*_times("h", "at"))
    .columns(since=_T)
)

_HELD_ACTIVITY = (
    text(
        "WITH held AS (SELECT member_id, MIN(earned_at) AS since FROM lots "
        f"WHERE program_id = :p AND (state = 'available' OR ({HOLD_ENDED})) "
        "AND earned_at <= :h GROUP BY member_id) "
        "SELECT h.member_id AS member_id, t.occurred_at AS at FROM held h "
        "JOIN ledger_transactions t ON t.member_id = h.member_id "
        f"WHERE t.kind IN {ACTIVITY_KINDS} AND t.occurred_at >= h.since "
        "AND t.occurred_at <= :at "
        "UNION ALL "
        "SELECT h.member_id, e.occurred_at FROM held h JOIN members m ON m.id = h.member_id "
        "JOIN processed_events e ON e.program_id = :p AND e.member_ref = m.ref "
        "WHERE e.type <> 'refund' AND e.occurred_at >= h.since AND e.occurred_at <= :at "
        "ORDER BY 1, 2"
    )
    .bindparams(*_times("h", "at"))
    .columns(at=_T)
)

_LAST_ACTIVITY = (
    text(
        "SELECT x.member_id, MAX(x.at) AS last FROM ("
        "SELECT member_id, occurred_at AS at FROM ledger_transactions WHERE program_id = :p "
        f"AND member_id IS NOT NULL AND kind IN {ACTIVITY_KINDS} "
        "AND occurred_at >= :lo AND occurred_at <= :at "
        "UNION ALL "
        "SELECT m.id, e.occurred_at FROM processed_events e JOIN members m "
        "ON m.program_id = e.program_id AND m.ref = e.member_ref WHERE e.program_id = :p "
        "AND e.type <> 'refund' AND e.occurred_at >= :lo AND e.occurred_at <= :at"
        ") x GROUP BY x.member_id ORDER BY x.member_id"
    )
    .bindparams(*_times("lo", "at"))
    .columns(last=_T)
)

_LAST_MEMBER_ACTIVITY = (
    text(
        "SELECT MAX(x.at) AS last FROM ("
        "SELECT MAX(occurred_at) AS at FROM ledger_transactions WHERE member_id = :m "
        f"AND kind IN {ACTIVITY_KINDS} AND occurred_at <= :at "
        "UNION ALL "
        "SELECT MAX(occurred_at) FROM processed_events WHERE program_id = :p "
        "AND member_ref = :r AND type <> 'refund' AND occurred_at <= :at"
        ") x"
    )
    .bindparams(*_times("at"))
    .columns(last=_T)
)

_HELD_SINCE = text(
    "SELECT currency, earned_at, expires_at, remaining FROM lots WHERE member_id = :m "
    "AND state = 'available' ORDER BY currency, id"
).columns(earned_at=_T, expires_at=_T)

_ENDED_CURRENCIES = text(
    f"SELECT DISTINCT currency FROM lots WHERE member_id = :m AND {HOLD_ENDED} ORDER BY currency"
).bindparams(*_times("at"))


@dataclass(frozen=True)
class Inactivity:
    """An inactivity policy as the ledger applies it: N months in the program's zone."""

    policy: ExpiryPolicy
    zone: ZoneInfo

    @staticmethod
    def of(policy: ExpiryPolicy | None, zone: ZoneInfo) -> Inactivity | None:
        """The rule if ``policy`` expires by inactivity, else ``None``."""
        if policy is None or policy.mode is not ExpiryMode.inactivity or policy.months is None:
            return None
        return Inactivity(policy, zone)

    @property
    def months(self) -> int:
        assert self.policy.months is not None
        return self.policy.months

    def earliest_lapsing(self, as_of: datetime) -> datetime:
        """No point earned after this instant can have lapsed by ``as_of``.

        N calendar months last at least 28 x N days less a DST hour; one day of margin.
        The calendar's first instant when that is earlier (nothing lapsed yet in year 1).
        """
        return shifted(as_of, -timedelta(days=28 * self.months - 1))

    def latest_unlapsed(self, as_of: datetime) -> datetime:
        """An activity before this instant has its deadline at or before ``as_of``.

        N calendar months last at most 31 x N days plus a DST hour; one day of margin.
        The calendar's first instant when that is earlier: every activity is read.
        """
        return shifted(as_of, -timedelta(days=31 * self.months + 1))

    def request(self) -> dict[str, Any]:
        """What identifies the rule in the expiry job's request fingerprint."""
        return {"inactivity_months": self.months, "time_zone": self.zone.key}


# ------------------------------------------------------------------ the expiry job


def lapsed_subjects(
    conn: Connection, program_id: str, rule: Inactivity, as_of: datetime
) -> list[tuple[str, str]]:
    """``(member ref, currency)`` pairs holding points that lapsed by ``as_of``.

    Held points include pending ones whose hold has ended by ``as_of``, as in
    :func:`member_lapse`: the job releases them, then expires them. A read without
    locks: the job re-checks each pair under the member's lock.
    """
    horizon = rule.earliest_lapsing(as_of)
    held = conn.execute(_HELD, {"p": program_id, "h": horizon, "at": as_of}).all()
    if not held:
        return []
    rows = conn.execute(_HELD_ACTIVITY, {"p": program_id, "h": horizon, "at": as_of})
    cutoff: dict[int, datetime] = {}
    for member_id, times in itertools.groupby(rows, key=lambda r: int(r[0])):
        lapse = inactivity_lapse(rule.policy, [r[1] for r in times], as_of, rule.zone)
        if lapse is not None:
            cutoff[member_id] = lapse.last_activity
    return [
        (str(ref), str(currency))
        for member_id, ref, currency, since in held
        if int(member_id) in cutoff and since <= cutoff[int(member_id)]
    ]


def member_lapse(
    conn: Connection,
    program_id: str,
    member_id: int,
    member_ref: str,
    currency: str,
    rule: Inactivity,
    as_of: datetime,
) -> Lapse | None:
    """The member's latest lapse by ``as_of`` that still holds points in ``currency``.

    Called under the member's lock by the expiry job and by every debit (spend, debit
    adjustment), so that both see the same lapse. Activities only need reading from the
    oldest lot the member still holds, since an earlier lapse cannot concern any held
    point; and when that lot is younger than the shortest N months, none is read at all
    (one indexed read: the common case of a member who spends what they earn).

    Held points include pending ones whose hold has ended by ``as_of``: they are the
    member's available points from that moment (a read-only balance counts them before
    their release is written), so a lapse that covers them is found either way.
    """
    since = conn.execute(_OLDEST_HELD, {"m": member_id, "c": currency,
                                        "at": as_of}).scalar_one()  # fmt: skip
    if since is None or since > rule.earliest_lapsing(as_of):
        return None  # nothing held is old enough to have lapsed: no activity to read
    times = conn.execute(
        _MEMBER_ACTIVITY,
        {"m": member_id, "p": program_id, "r": member_ref, "since": since, "at": as_of},
    ).scalars()
    return inactivity_lapse(rule.policy, list(times), as_of, rule.zone)


def first_lapse(
    conn: Connection,
    program_id: str,
    member_id: int,
    member_ref: str,
    currency: str,
    rule: Inactivity,
    as_of: datetime,
) -> Lapse | None:
    """The member's earliest lapse by ``as_of`` that still holds points in ``currency``:
    the first after the oldest lot they hold was earned, i.e. the deadline at which that
    lot's points lapsed (``None``: nothing held has lapsed).

    Where :func:`member_lapse` gives the latest lapse, which covers every earlier one
    (the expiry job catches up in one step), this one gives each lot its own deadline:
    the points held that it covers (earned at or before its last activity) all lapsed
    at it, none earlier. Held points are those :func:`member_lapse` counts.
    """
    since = conn.execute(_OLDEST_HELD, {"m": member_id, "c": currency,
                                        "at": as_of}).scalar_one()  # fmt: skip
    if since is None or since > rule.earliest_lapsing(as_of):
        return None
    times = conn.execute(
        _MEMBER_ACTIVITY,
        {"m": member_id, "p": program_id, "r": member_ref, "since": since, "at": as_of},
    ).scalars()
    return _earliest_lapse(rule, list(times), as_of)


def _earliest_lapse(rule: Inactivity, activities: list[datetime], as_of: datetime) -> Lapse | None:
    """The first lapse among ``activities`` (ascending) by ``as_of``, by the rule of
    :func:`~fidelite.engine.expiry.inactivity_lapse`: an activity whose deadline is at
    or before ``as_of`` and not followed by another before that deadline. Deadlines
    grow with the activity, so the first one after ``as_of`` (or past the calendar's
    end) ends the search."""
    for index, at in enumerate(activities):
        deadline = inactivity_deadline(rule.policy, at, rule.zone)
        if deadline is None or deadline > as_of:
            return None
        later = activities[index + 1] if index + 1 < len(activities) else None
        if later is None or later >= deadline:
            return Lapse(at, deadline.astimezone(UTC))
    return None


def coming_lapse(
    conn: Connection,
    program_id: str,
    member_id: int,
    member_ref: str,
    rule: Inactivity,
    as_of: datetime,
) -> Lapse | None:
    """The lapse to come if the member does nothing more after ``as_of``: their last
    activity at or before ``as_of`` and its deadline (in UTC), when that is after ``as_of``
    (``None``: no activity, a deadline past the calendar's end, or one already reached —
    then it is the member's lapse, :func:`member_lapse`, and nothing it covers is held).

    Every point earned at or before that activity and still held at the deadline lapses
    then, unless its own expiry date comes first; the deadline moves with every new
    activity (as defined above), exactly as the expiry job will see it.
    """
    last = conn.execute(
        _LAST_MEMBER_ACTIVITY, {"m": member_id, "p": program_id, "r": member_ref, "at": as_of}
    ).scalar_one()
    if last is None:
        return None
    deadline = inactivity_deadline(rule.policy, last, rule.zone)  # None: past the calendar
    if deadline is None or deadline <= as_of:
        return None
    return Lapse(last, deadline.astimezone(UTC))  # in UTC, as lots' dates are read


def lapsed_lots(conn: Connection, member_id: int, currency: str, lapse: Lapse) -> list[OpenLot]:
    """Available lots earned at or before the lapse's last activity, in spending order."""
    rows = conn.execute(_LAPSED_LOTS, {"m": member_id, "c": currency,
                                       "last": lapse.last_activity})  # fmt: skip
    return [OpenLot(int(r[0]), int(r[1]), str(r[2]), r[3]) for r in rows]


def lapsed_points(
    conn: Connection, member_id: int, currency: str, lapse: Lapse, at: datetime
) -> int:
    """Points of ``lapse`` the member still holds at ``at`` (the job has not moved them
    out yet), less those of lots past their own expiry date by then: those count as
    expired by date, as the job's entry counts them."""
    return sum(
        lot.remaining
        for lot in lapsed_lots(conn, member_id, currency, lapse)
        if lot.expires_at is None or lot.expires_at > at
    )


# ---------------------------------------------------------------------- warnings


@dataclass(frozen=True)
class Lapsing:
    """Points of one member and currency that lapse at ``deadline`` without activity."""

    member_id: int
    member_ref: str
    currency: str
    points: int
    last_activity: datetime
    deadline: datetime


def lapsing_within(
    conn: Connection, program_id: str, rule: Inactivity, as_of: datetime, until: datetime
) -> list[Lapsing]:
    """Held points whose inactivity deadline falls in ``(as_of, until]``.

    The deadline follows the member's last activity at or before ``as_of``. Lots with
    their own expiry date at or before the deadline are left out (they go first, by
    date, and are announced as such). Held points are counted as the balance counts
    them: pending lots whose hold has ended by ``as_of`` are held as their release will
    leave them (debt repaid first), whether or not the release is written yet, and the
    points of an earlier lapse by ``as_of`` (:func:`member_lapse`) are gone already,
    even before the expiry job moves them out.
    """
    lo = rule.latest_unlapsed(as_of)
    found: list[Lapsing] = []
    for member_id, last in conn.execute(_LAST_ACTIVITY, {"p": program_id, "lo": lo, "at": as_of}):
        deadline = inactivity_deadline(rule.policy, last, rule.zone)  # None: past the calendar
        if deadline is not None and as_of < deadline <= until:
            coming = Lapse(last, deadline)
            found.extend(_held_by(conn, program_id, rule, int(member_id), coming, as_of))
    return found


def _held_by(
    conn: Connection,
    program_id: str,
    rule: Inactivity,
    member_id: int,
    coming: Lapse,
    as_of: datetime,
) -> list[Lapsing]:
    """The member's held points, per currency, that lapse at ``coming.deadline``: earned
    at or before its last activity, not dated before the deadline, and not lapsed by
    ``as_of`` already (earned at or before the last activity of the member's lapse)."""
    ref = conn.execute(text("SELECT ref FROM members WHERE id = :m"), {"m": member_id})
    member_ref = str(ref.scalar_one())
    last, deadline = coming.last_activity, coming.deadline
    gone: dict[str, datetime | None] = {}
    totals: dict[str, int] = {}
    for currency, earned_at, expires_at, points in _held_lots(conn, member_id, as_of):
        if currency not in gone:
            lapse = member_lapse(conn, program_id, member_id, member_ref, currency, rule, as_of)
            gone[currency] = None if lapse is None else lapse.last_activity
        lapsed = gone[currency]
        if lapsed is not None and earned_at <= lapsed:
            continue
        if earned_at <= last and (expires_at is None or expires_at > deadline):
            totals[currency] = totals.get(currency, 0) + points
    return [
        Lapsing(member_id, member_ref, currency, points, last, deadline)
        for currency, points in sorted(totals.items())
        if points
    ]


def _held_lots(
    conn: Connection, member_id: int, as_of: datetime
) -> list[tuple[str, datetime, datetime | None, int]]:
    """``(currency, earned_at, expires_at, points)`` of every lot the member holds at
    ``as_of``: available lots, and pending lots whose hold has ended then, with the
    points their release leaves once it has repaid the member's debt."""
    held = [(str(c), e, x, int(r)) for c, e, x, r in conn.execute(_HELD_SINCE, {"m": member_id})]
    ended = conn.execute(_ENDED_CURRENCIES, {"m": member_id, "at": as_of}).scalars().all()
    for currency in ended:
        lots = ended_hold_lots(conn, member_id, currency, as_of)
        for lot, share in released_shares(lots, member_debt(conn, member_id, currency)):
            held.append((str(currency), lot.earned_at, lot.expires_at, share))
    return held
