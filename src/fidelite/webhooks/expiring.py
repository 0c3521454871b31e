"""``points.expiring``: warn members' systems before their points expire, once each.

Run daily (``fidelite webhooks expiring``) before the expiry job. Two causes:

* ``date``: every lot the member holds at ``as_of`` whose expiry date falls in
  ``(as_of, as_of + days]`` gets one outbox event (dedup key
  ``points.expiring:<lot id>``);
* ``inactivity`` (when the program's policy is given and expires by inactivity): every
  member whose inactivity deadline — months after their last activity at or before
  ``as_of``, see :mod:`fidelite.ledger.inactivity` — falls in that window gets one event
  per currency with the points that would lapse (dedup key
  ``points.expiring:inactivity:<member id>:<currency>:<deadline>``). A member who acts
  again moves the deadline, so the next warning is a new event. Points whose hold ends
  after that event (no activity: the deadline stays) are announced by a further event
  with the points held beyond those already announced (keys ``...:<deadline>:2``,
  ``:3``...), so the events of one deadline add up to what lapses then.

Points held are counted as the member's balance counts them
(:meth:`fidelite.ledger.Ledger.balance`): available lots, and pending lots whose hold
has ended by ``as_of`` with the points their release will leave once it has repaid the
member's debt (:func:`~fidelite.ledger.state.released_shares`), whether or not
``ledger release-due`` has written that release yet. Under an inactivity policy, a
dated lot that lapsed by ``as_of`` is gone, not announced for its date, and one the
coming inactivity deadline takes before its date is announced for the deadline only.
A lot is pending or available, never both, and its event's dedup key is the same
either way: each point is announced once, whichever of the two jobs runs first. A
hold that ends later in the window is not held yet at ``as_of``: the first run after
it has ended announces it (by date, or for the inactivity deadline, as above).

An erased member is never announced (``members.status`` is ``erased``): the erasure
stopped the member's webhook events, and a new one would name the tombstone.

``days`` defaults to the policy's ``warn_days`` (30 without a policy); ``0`` announces
nothing. A re-run announces nothing twice; one run writes its events in one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select, text

from fidelite.engine.calendar import add_days
from fidelite.engine.expiry import Lapse
from fidelite.ledger.inactivity import (
    Inactivity,
    coming_lapse,
    lapsing_within,
    member_lapse,
)
from fidelite.ledger.state import HOLD_ENDED, ended_hold_lots, member_debt, released_shares
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from fidelite.store.tables import UTCDateTime
from fidelite.webhooks.events import POINTS_EXPIRING
from fidelite.webhooks.outbox import record
from fidelite.webhooks.tables import outbox

_WINDOW = (bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))
_DUE = (
    text(
        "SELECT l.member_id, l.id, m.ref, l.currency, l.remaining, l.earned_at, l.expires_at "
        "FROM lots l JOIN members m ON m.id = l.member_id "
        "WHERE l.program_id = :p AND m.status <> 'erased' AND l.state = 'available' "
        "AND l.expires_at IS NOT NULL AND l.expires_at > :start AND l.expires_at <= :end "
        "ORDER BY m.id, l.id"
    )
    .bindparams(*_WINDOW)
    .columns(earned_at=UTCDateTime(), expires_at=UTCDateTime())
)
# Members (not erased) and currencies with a pending lot whose hold has ended at :at (the
# start of the window) and whose expiry date falls in the window.
_ENDED = text(
    "SELECT h.member_id, m.ref, h.currency FROM (SELECT DISTINCT member_id, currency "
    f"FROM lots WHERE program_id = :p AND {HOLD_ENDED} AND expires_at > :start "
    "AND expires_at <= :end) h JOIN members m ON m.id = h.member_id "
    "WHERE m.status <> 'erased' ORDER BY h.member_id, h.currency"
).bindparams(*_WINDOW, bindparam("at", type_=UTCDateTime()))

_ERASED = text("SELECT id FROM members WHERE program_id = :p AND status = 'erased'")

Announcement = tuple[str, str, dict[str, Any]]
"""An event to write: member reference, dedup key, payload."""


def warning_days(days: int | None, policy: ExpiryPolicy | None) -> int:
    """The window to announce: ``days`` if given, else the policy's ``warn_days``, else 30."""
    window = days if days is not None else (policy.warn_days if policy is not None else 30)
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 365:
        raise ValueError(f"days: must be a whole number from 0 to 365, got {window!r}")
    return window


def announce_expiring(
    db: Database,
    program_id: str,
    as_of: datetime,
    *,
    days: int | None = None,
    policy: ExpiryPolicy | None = None,
    zone: ZoneInfo | None = None,
) -> int:
    """Write ``points.expiring`` for points expiring in ``(as_of, as_of + days]``,
    ``days`` counted in local calendar days of ``zone`` (UTC if not given): the window
    ends at ``as_of``'s wall-clock time that many days later, as expiry dates keep it.

    ``policy`` and ``zone`` are the program's expiry policy and time zone; returns how
    many events were written (announcements already made are not counted).
    """
    return len(announce_expiring_points(db, program_id, as_of, days=days, policy=policy,
                                        zone=zone))  # fmt: skip


def announce_expiring_points(
    db: Database,
    program_id: str,
    as_of: datetime,
    *,
    days: int | None = None,
    policy: ExpiryPolicy | None = None,
    zone: ZoneInfo | None = None,
) -> list[dict[str, Any]]:
    """:func:`announce_expiring`, answering with what it wrote: the payload of each
    event written (member, currency, points, expires_at, lot_id, cause, and
    last_activity for inactivity), lots by member then lot, then inactivity warnings.
    What was announced before is not written again, so not listed: a re-run lists none.
    """
    window = warning_days(days, policy)
    if window == 0:
        return []
    zone = zone or ZoneInfo("UTC")
    # `window` local days of the program's zone, as expiry dates keep the local clock;
    # the calendar's end at the latest.
    end = add_days(as_of, timedelta(days=window), zone)
    rule = Inactivity.of(policy, zone)
    with db.read() as conn:
        found = _dated(conn, program_id, as_of, end, rule)
        if rule is not None:
            found += _inactive(conn, program_id, rule, as_of, end)
    written = []
    with db.write() as conn:
        for ref, key, payload in found:
            if record(conn, program_id, POINTS_EXPIRING, payload, member_ref=ref, dedup_key=key):
                written.append(payload)
    return written


def _dated(
    conn: Connection,
    program_id: str,
    start: datetime,
    end: datetime,
    rule: Inactivity | None = None,
) -> list[Announcement]:
    """One announcement per held lot expiring in ``(start, end]``, by member then lot:
    available lots with their remaining points, and lots whose hold has ended at
    ``start`` with the points their release will leave (as the balance counts them).

    Under an inactivity ``rule`` (dated lots kept from an earlier policy, or an
    ``adjust --expires``), as the balance counts them too: a lot that lapsed by
    ``start`` (earned at or before the last activity of the member's lapse) is gone and
    not announced; one that the coming inactivity deadline takes before its date is the
    inactivity warning's (:func:`_inactive`), not announced by date as well."""
    window = {"p": program_id, "start": start, "end": end}
    lots: list[tuple[int, int, str, str, int, datetime, datetime]] = [
        (int(member_id), int(lot_id), str(ref), str(currency), int(remaining), earned_at,
         expires_at)
        for member_id, lot_id, ref, currency, remaining, earned_at, expires_at
        in conn.execute(_DUE, window)
    ]  # fmt: skip
    for member_id, ref, currency in conn.execute(_ENDED, window | {"at": start}).all():
        ended = ended_hold_lots(conn, int(member_id), currency, start)
        for lot, share in released_shares(ended, member_debt(conn, int(member_id), currency)):
            expires_at = lot.expires_at
            if share and expires_at is not None and start < expires_at <= end:
                lots.append((int(member_id), lot.id, str(ref), str(currency), share,
                             lot.earned_at, expires_at))  # fmt: skip
    if rule is not None:
        lots = _not_lapsing(conn, program_id, rule, start, lots)
    return [
        _lot_announcement(lot_id, ref, currency, points, expires_at)
        for _, lot_id, ref, currency, points, _, expires_at in sorted(lots, key=lambda x: x[:2])
    ]


def _not_lapsing(
    conn: Connection,
    program_id: str,
    rule: Inactivity,
    start: datetime,
    lots: list[tuple[int, int, str, str, int, datetime, datetime]],
) -> list[tuple[int, int, str, str, int, datetime, datetime]]:
    """``lots`` less those the inactivity ``rule`` takes before their date: lapsed by
    ``start`` (:func:`~fidelite.ledger.inactivity.member_lapse`, as the balance leaves
    them out), or lapsing at the member's coming deadline before their date
    (:func:`~fidelite.ledger.inactivity.coming_lapse`, as the balance dates them)."""
    lapses: dict[tuple[int, str], Lapse | None] = {}
    coming: dict[int, Lapse | None] = {}
    kept = []
    for lot in lots:
        member_id, _, ref, currency, _, earned_at, expires_at = lot
        if (member_id, currency) not in lapses:
            lapses[member_id, currency] = member_lapse(conn, program_id, member_id, ref,
                                                       currency, rule, start)  # fmt: skip
        if member_id not in coming:
            coming[member_id] = coming_lapse(conn, program_id, member_id, ref, rule, start)
        lapse, next_lapse = lapses[member_id, currency], coming[member_id]
        if lapse is not None and earned_at <= lapse.last_activity:
            continue  # lapsed already: the balance has it no more
        if (next_lapse is not None and earned_at <= next_lapse.last_activity
                and next_lapse.deadline < expires_at):  # fmt: skip
            continue  # lapses at the deadline, before its date: announced as inactivity
        kept.append(lot)
    return kept


def _lot_announcement(
    lot_id: int, ref: str, currency: str, points: int, expires_at: datetime
) -> Announcement:
    payload = {
        "member": ref,
        "currency": currency,
        "points": points,
        "expires_at": expires_at.astimezone(UTC).isoformat(),
        "lot_id": lot_id,
        "cause": "date",
    }
    return ref, f"{POINTS_EXPIRING}:{lot_id}", payload


def _erased_members(conn: Connection, program_id: str) -> set[int]:
    """The program's erased members (``members.status``, as the ledger refuses their
    writes): the erasure stopped their webhook events, so none is announced about them."""
    rows = conn.execute(_ERASED, {"p": program_id}).scalars()
    return {int(member_id) for member_id in rows}


def _inactive(
    conn: Connection, program_id: str, rule: Inactivity, start: datetime, end: datetime
) -> list[Announcement]:
    found = []
    erased = _erased_members(conn, program_id)
    for lapsing in lapsing_within(conn, program_id, rule, start, end):
        if lapsing.member_id in erased:
            continue
        deadline = lapsing.deadline.astimezone(UTC).isoformat()
        payload = {
            "member": lapsing.member_ref,
            "currency": lapsing.currency,
            "points": lapsing.points,
            "expires_at": deadline,
            "lot_id": None,
            "cause": "inactivity",
            "last_activity": lapsing.last_activity.astimezone(UTC).isoformat(),
        }
        base = f"{POINTS_EXPIRING}:inactivity:{lapsing.member_id}:{lapsing.currency}:{deadline}"
        announced, key = _announced(conn, program_id, base)
        if lapsing.points > announced:
            payload["points"] = lapsing.points - announced
            found.append((lapsing.member_ref, key, payload))
    return found


def _announced(conn: Connection, program_id: str, base: str) -> tuple[int, str]:
    """Points already announced for one member, currency and deadline, and the dedup key
    of the next announcement for it: ``base``, then ``base:2``, ``base:3``...

    Held points grow without a new activity (which would move the deadline) only as
    holds end, so a later run announces the points held beyond those announced: each
    announcement's points add up to what the member holds for that deadline."""
    total, key, number = 0, base, 1
    while (points := _announced_points(conn, program_id, key)) is not None:
        total += points
        number += 1
        key = f"{base}:{number}"
    return total, key


def _announced_points(conn: Connection, program_id: str, key: str) -> int | None:
    """The points of the announcement written under ``key`` (``None``: none written)."""
    written = (outbox.c.program_id == program_id) & (outbox.c.dedup_key == key)
    row = conn.execute(select(outbox.c.payload).where(written)).first()
    if row is None:
        return None
    payload = row[0]
    return int(payload.get("points", 0)) if isinstance(payload, dict) else 0
