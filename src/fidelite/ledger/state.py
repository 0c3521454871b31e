"""Reads of ledger state, done inside the writer's transaction after the member lock.

Lots are returned in *spending order*: soonest expiry first, lots that never expire
last, then oldest earned, then lowest id (a total order, so spending is deterministic).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from fidelite.store.locking import insert_ignoring_duplicates
from fidelite.store.tables import Account, UTCDateTime

MEMBER_KINDS = ("available", "pending", "debt")
PROGRAM_KINDS = ("issued", "redeemed", "expired", "adjustment", "written_off")

# Times are bound through the column type so SQLite compares like-formatted text.
_AT = bindparam("at", type_=UTCDateTime())
_AFTER = bindparam("after", type_=UTCDateTime())

SPENDING_ORDER = "(expires_at IS NULL), expires_at, earned_at, id"


@dataclass(frozen=True)
class OpenLot:
    """A lot with points left (state ``available`` or ``pending``)."""

    id: int
    remaining: int
    state: str
    expires_at: datetime | None


@dataclass
class MemberAccounts:
    """A member's three accounts in one currency, with their cached balances."""

    ids: dict[str, int]
    balances: dict[str, int]


def member_accounts(
    conn: Connection, program_id: str, member_id: int, currency: str
) -> MemberAccounts:
    """The member's accounts in ``currency``, created on first use."""
    rows = _select_member_accounts(conn, member_id, currency)
    if len(rows) < len(MEMBER_KINDS):
        insert_ignoring_duplicates(
            conn,
            Account.__table__,  # type: ignore[arg-type]
            [
                {
                    "program_id": program_id,
                    "currency": currency,
                    "kind": kind,
                    "member_id": member_id,
                    "balance": 0,
                }
                for kind in MEMBER_KINDS
            ],
        )
        rows = _select_member_accounts(conn, member_id, currency)
    return MemberAccounts(
        ids={kind: acc_id for acc_id, kind, _ in rows},
        balances={kind: int(balance) for _, kind, balance in rows},
    )


def _select_member_accounts(
    conn: Connection, member_id: int, currency: str
) -> list[tuple[int, str, int]]:
    rows = conn.execute(
        text("SELECT id, kind, balance FROM accounts WHERE member_id = :m AND currency = :c"),
        {"m": member_id, "c": currency},
    ).all()
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]


def program_accounts(conn: Connection, program_id: str, currency: str) -> dict[str, int]:
    """Program-side account ids by kind (created by ``open_program``)."""
    rows = conn.execute(
        text(
            "SELECT kind, id FROM accounts WHERE program_id = :p AND currency = :c "
            "AND member_id IS NULL"
        ),
        {"p": program_id, "c": currency},
    ).all()
    return {str(kind): int(acc_id) for kind, acc_id in rows}


def spendable_lots(
    conn: Connection,
    member_id: int,
    currency: str,
    at: datetime,
    *,
    exclude_lot: int | None = None,
    earned_after: datetime | None = None,
) -> list[OpenLot]:
    """Available lots not due to expire at ``at``, in spending order.

    ``earned_after`` (the last activity of an inactivity lapse by ``at``) also leaves
    out the lots earned at or before it: they lapsed, even if the job has not yet moved
    them out, exactly as a lot past its expiry date is not spendable before the job.
    """
    lapsed = "" if earned_after is None else "AND earned_at > :after "
    stmt = text(
        "SELECT id, remaining, state, expires_at FROM lots "
        "WHERE member_id = :m AND currency = :c AND state = 'available' "
        f"AND (expires_at IS NULL OR expires_at > :at) AND id <> :x {lapsed}"
        f"ORDER BY {SPENDING_ORDER}"
    ).bindparams(_AT)
    params: dict[str, Any] = {"m": member_id, "c": currency, "at": at, "x": exclude_lot or -1}
    if earned_after is not None:
        stmt = stmt.bindparams(_AFTER)
        params["after"] = earned_after
    return [_open_lot(r) for r in conn.execute(stmt, params).all()]


HOLD_ENDED = "state = 'pending' AND pending_until <= :at"
"""SQL: a pending lot whose hold (return window) has ended at ``:at``, the condition
:meth:`~fidelite.ledger.service.Ledger.release_due` releases on; an earn whose
``pending_until`` is at or before its own time is available at once, by the same rule."""


def ended_holds(conn: Connection, member_id: int, currency: str, at: datetime) -> list[int]:
    """Earn transactions of the member's pending lots whose hold has ended at ``at``,
    in lot order (the order in which the release job releases them)."""
    rows = conn.execute(
        text(
            "SELECT earn_transaction_id FROM lots WHERE member_id = :m AND currency = :c "
            f"AND {HOLD_ENDED} ORDER BY id"
        ).bindparams(_AT),
        {"m": member_id, "c": currency, "at": at},
    ).all()
    return [int(r[0]) for r in rows]


@dataclass(frozen=True)
class EndedHold:
    """A pending lot whose hold has ended: points the member holds as available, once
    they have repaid any debt (as their release will make them)."""

    id: int
    remaining: int
    earned_at: datetime
    expires_at: datetime | None


def ended_hold_lots(
    conn: Connection, member_id: int, currency: str, at: datetime
) -> list[EndedHold]:
    """The member's pending lots whose hold has ended at ``at``, in lot order."""
    rows = conn.execute(
        text(
            "SELECT id, remaining, earned_at, expires_at FROM lots WHERE member_id = :m "
            f"AND currency = :c AND {HOLD_ENDED} ORDER BY id"
        )
        .bindparams(_AT)
        .columns(earned_at=UTCDateTime(), expires_at=UTCDateTime()),
        {"m": member_id, "c": currency, "at": at},
    ).all()
    return [EndedHold(int(r[0]), int(r[1]), _as_utc(r[2]) or at, _as_utc(r[3])) for r in rows]


def member_debt(conn: Connection, member_id: int, currency: str) -> int:
    """Points the member owes in ``currency`` (>= 0; 0 before their accounts exist).

    A read only: unlike :func:`member_accounts` it creates no account."""
    owed = conn.execute(
        text(
            "SELECT COALESCE(SUM(balance), 0) FROM accounts "
            "WHERE member_id = :m AND currency = :c AND kind = 'debt'"
        ),
        {"m": member_id, "c": currency},
    ).scalar_one()
    return -int(owed)


def released_shares(lots: list[EndedHold], debt: int) -> list[tuple[EndedHold, int]]:
    """Each ended hold with the points its release leaves available: a release repays
    the member's ``debt`` first, so the debt is taken from the lots in the order given
    (lot order, the order :func:`ended_hold_lots` returns and the releases are written
    in) until it is repaid; a lot's remaining less its share is what it repays.

    The one rule by which the balance and the ``points.expiring`` warnings both count
    ended holds, so that both count a point as its release will leave it."""
    shares = []
    for lot in lots:
        repay = min(lot.remaining, debt)
        debt -= repay
        shares.append((lot, lot.remaining - repay))
    return shares


@dataclass(frozen=True)
class UnsettledLot:
    """An open lot whose account is not what the member truly holds at some time:
    pending although its hold has ended (truly available, the release not yet written),
    or available although ``gone`` (past its expiry date, or lapsed by inactivity: the
    expiry job has not moved it out yet). A pending lot can be both: then it is gone."""

    id: int
    state: str
    remaining: int
    gone: bool


def unsettled_lots(
    conn: Connection,
    member_id: int,
    currency: str,
    at: datetime,
    lapsed_up_to: datetime | None,
    refilled: list[int],
) -> list[UnsettledLot]:
    """The member's :class:`UnsettledLot` s at ``at``, and the ``refilled`` lots (those a
    plan puts points back into: a closed lot past its date is available again in the
    account, and gone). ``lapsed_up_to``: the last activity of the member's inactivity
    lapse by ``at`` (lots earned at or before it are gone)."""
    gone = "expires_at <= :at" + ("" if lapsed_up_to is None else " OR earned_at <= :after")
    stmt = text(
        f"SELECT id, state, remaining, CASE WHEN {gone} THEN 1 ELSE 0 END FROM lots "
        f"WHERE member_id = :m AND currency = :c AND ({HOLD_ENDED} "
        f"OR (state = 'available' AND ({gone})) OR id IN :refilled) ORDER BY id"
    ).bindparams(_AT, bindparam("refilled", expanding=True))
    params: dict[str, Any] = {"m": member_id, "c": currency, "at": at,
                              "refilled": refilled or [-1]}  # fmt: skip
    if lapsed_up_to is not None:
        stmt = stmt.bindparams(_AFTER)
        params["after"] = lapsed_up_to
    rows = conn.execute(stmt, params).all()
    return [UnsettledLot(int(r[0]), str(r[1]), int(r[2]), bool(r[3])) for r in rows]


def due_lots(conn: Connection, member_id: int, currency: str, as_of: datetime) -> list[OpenLot]:
    """Available lots whose expiry date is at or before ``as_of``."""
    rows = conn.execute(
        text(
            "SELECT id, remaining, state, expires_at FROM lots "
            "WHERE member_id = :m AND currency = :c AND state = 'available' "
            f"AND expires_at <= :at ORDER BY {SPENDING_ORDER}"
        ).bindparams(_AT),
        {"m": member_id, "c": currency, "at": as_of},
    ).all()
    return [_open_lot(r) for r in rows]


def lot_of(conn: Connection, earn_transaction_id: int) -> OpenLot | None:
    """The lot an earn (or credit adjustment) created, if it created one."""
    row = conn.execute(
        text("SELECT id, remaining, state, expires_at FROM lots WHERE earn_transaction_id = :t"),
        {"t": earn_transaction_id},
    ).first()
    return None if row is None else _open_lot(row)


CLAIMS = "claimed_expired_lots"
"""Key of a reversal's, spend's or debit adjustment's ``detail``: ``{lot id: points}``
it took from the expired points of lots still valid at its date (postings on
``expired`` name no lot, so the detail does). A reversal of such a debit gives them
back to ``expired`` and records that as negative points under the same key."""

CLAIMING_KINDS = "('reverse', 'spend', 'adjust')"
"""SQL list of the kinds of entry whose ``detail`` may hold :data:`CLAIMS`."""


def unclaimed_expiry(conn: Connection, lot_id: int) -> int:
    """Points of lot ``lot_id`` that expired (less what reversals of expiries put back)
    and that no reversal has yet claimed: neither a reversal of the lot's earn (as
    already expired) nor a back-dated shortfall of another earn's reversal
    (:func:`claimable_expired_lots`, recorded in its detail's ``claimed_expired_lots``).

    Those are what a reversal of the earn finds already gone (it moves them from the
    program's ``expired`` account back to ``issued``, taking nothing from the member),
    and all that a reversal of the expiry may still put back into the lot. Each expired
    point is claimed once.
    """
    row = conn.execute(
        text(
            "SELECT "
            "(SELECT COALESCE(-SUM(p.points), 0) FROM postings p "
            " JOIN ledger_transactions t ON t.id = p.transaction_id "
            " LEFT JOIN ledger_transactions o ON o.id = t.reverses_id "
            " WHERE p.lot_id = l.id AND (t.kind = 'expire' OR o.kind = 'expire')), "
            "(SELECT COALESCE(-SUM(p.points), 0) FROM postings p "
            " JOIN ledger_transactions t ON t.id = p.transaction_id "
            " JOIN accounts a ON a.id = p.account_id "
            " WHERE t.reverses_id = l.earn_transaction_id AND a.kind = 'expired' "
            " AND a.member_id IS NULL) "
            ", l.member_id, l.earn_transaction_id, CASE WHEN EXISTS (SELECT 1 "
            " FROM ledger_transactions r WHERE r.member_id = l.member_id "
            f" AND r.kind IN {CLAIMING_KINDS} AND CAST(r.detail AS TEXT) LIKE '%{CLAIMS}%') "
            " THEN 1 ELSE 0 END FROM lots l WHERE l.id = :l"
        ),
        {"l": lot_id},
    ).one()
    if int(row[0]) <= 0:  # never expired (net): nothing to claim, whatever was claimed
        return 0
    if not row[4]:  # no reversal of the member ever claimed expired points
        return max(int(row[0]) - int(row[1]), 0)
    claimed = 0
    for reverses_id, lots in expiry_claims(conn, int(row[2])):
        claimed += lots.get(str(lot_id), 0)
        if reverses_id == row[3]:  # its expired posting also holds these other lots' claims
            claimed -= sum(lots.values())
    return max(int(row[0]) - int(row[1]) - claimed, 0)


def expiry_claims(conn: Connection, member_id: int) -> list[tuple[int | None, dict[str, int]]]:
    """``(reversed transaction id, {lot id: points})`` of every entry of the member that
    claimed expired points (:data:`CLAIMS`): a reversal's shortfall, a back-dated spend
    or debit adjustment (no reversed id), or a reversal of one of those giving them back
    (negative points)."""
    rows = conn.execute(
        text(
            "SELECT reverses_id, detail FROM ledger_transactions WHERE member_id = :m "
            f"AND kind IN {CLAIMING_KINDS} AND CAST(detail AS TEXT) LIKE '%{CLAIMS}%'"
        ),
        {"m": member_id},
    ).all()
    out = []
    for reverses_id, detail in rows:
        stored = detail if isinstance(detail, dict) else json.loads(detail)
        lots = {str(k): int(v) for k, v in (stored.get(CLAIMS) or {}).items()}
        out.append((None if reverses_id is None else int(reverses_id), lots))
    return out


def claimable_expired_lots(
    conn: Connection,
    member_id: int,
    currency: str,
    at: datetime,
    *,
    exclude_lot: int | None = None,
) -> dict[int, int]:
    """Lot id -> expired points a reversal's shortfall dated ``at`` may claim: points of
    lots with a date of their own still in the future at ``at`` (``expires_at`` after
    it), that an expiry entry dated after ``at`` moved out by that date (the lot was due
    at the entry's ``as_of``, not lapsed by inactivity before its date), and that are
    not claimed yet (:func:`unclaimed_expiry`).

    They are what the shortfall would have drawn had the expiry job not run yet
    (:func:`spendable_lots` at ``at``), so that the same events give the same books
    whenever the job ran. Points an inactivity lapse took are never claimable: the
    entry names only the member's latest lapse, so whether such a lot had lapsed by
    ``at`` is not known from it. One indexed read of the member's lots; when it finds
    no such expiry (the common case) nothing else is read."""
    stmt = text(
        "SELECT l.id, l.expires_at, t.detail, t.occurred_at FROM lots l "
        "JOIN postings p ON p.lot_id = l.id "
        "JOIN ledger_transactions t ON t.id = p.transaction_id AND t.kind = 'expire' "
        "WHERE l.member_id = :m AND l.currency = :c AND l.expires_at > :at "
        "AND l.id <> :x AND t.occurred_at > :at ORDER BY l.id"
    ).bindparams(_AT)
    params: dict[str, Any] = {"m": member_id, "c": currency, "at": at, "x": exclude_lot or -1}
    candidates: set[int] = set()
    for lot_id, expires_at, detail, occurred_at in conn.execute(stmt, params).all():
        if _due_by_date(detail, _as_utc(expires_at), _as_utc(occurred_at)):
            candidates.add(int(lot_id))
    out = {lot_id: unclaimed_expiry(conn, lot_id) for lot_id in sorted(candidates)}
    return {lot_id: n for lot_id, n in out.items() if n > 0}


def _due_by_date(detail: Any, expires_at: datetime | None, occurred_at: datetime | None) -> bool:
    """Whether an expiry entry (its ``detail`` and time) took a lot expiring at
    ``expires_at`` because its date had come (the lot was due at the entry's ``as_of``),
    rather than as lapsed by inactivity before that date."""
    stored = detail if detail is None or isinstance(detail, dict) else json.loads(detail)
    as_of = _as_utc((stored or {}).get("as_of")) or occurred_at
    return expires_at is not None and as_of is not None and expires_at <= as_of


def in_spending_order(conn: Connection, lot_ids: set[int]) -> list[int]:
    """``lot_ids`` in spending order (:data:`SPENDING_ORDER`)."""
    if not lot_ids:
        return []
    stmt = text(f"SELECT id FROM lots WHERE id IN :ids ORDER BY {SPENDING_ORDER}").bindparams(
        bindparam("ids", expanding=True)
    )
    return [int(r[0]) for r in conn.execute(stmt, {"ids": sorted(lot_ids)}).all()]


def restorable_draws(
    conn: Connection, transaction_id: int, *, every: bool = False
) -> list[tuple[int, int]]:
    """Per lot, points a debit transaction drew that its reversals have not yet put back.

    Returned in reverse order of drawing, the order in which reversals refill lots.
    ``every``: also the lots with nothing left by that count (zero or less: reversals
    refilled them on account of other lots, see ``service._Returns``).
    """
    rows = conn.execute(
        text(
            "SELECT p.lot_id, -SUM(p.points) AS drawn, MIN(p.id) AS first_posting "
            "FROM postings p JOIN accounts a ON a.id = p.account_id "
            "WHERE p.transaction_id = :t AND a.kind = 'available' AND p.lot_id IS NOT NULL "
            "GROUP BY p.lot_id ORDER BY first_posting DESC"
        ),
        {"t": transaction_id},
    ).all()
    refilled: dict[int, int] = dict(
        conn.execute(
            text(
                "SELECT p.lot_id, SUM(p.points) FROM postings p "
                "JOIN ledger_transactions r ON r.id = p.transaction_id "
                "JOIN accounts a ON a.id = p.account_id "
                "WHERE r.reverses_id = :t AND a.kind = 'available' AND p.lot_id IS NOT NULL "
                "GROUP BY p.lot_id"
            ),
            {"t": transaction_id},
        ).all()
    )
    out = []
    for lot_id, drawn, _ in rows:
        left = int(drawn) - int(refilled.get(lot_id, 0))
        if left > 0 or every:
            out.append((int(lot_id), left))
    return out


def _open_lot(row: Any) -> OpenLot:
    return OpenLot(int(row[0]), int(row[1]), str(row[2]), _as_utc(row[3]))


def _as_utc(value: object) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
