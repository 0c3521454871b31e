"""Reading a program's coupon codes: one code's status, and a campaign's codes by page.

What the store keeps of a code (table ``coupons``): its campaign, ``issued`` or ``used``,
the member it was issued to (none: anyone may use it), when it was issued, and the event
that used it; the member who used it and when are that event's (``processed_events``).
A code given back by the full refund of the purchase that used it is ``issued`` again,
with no using event. Read only: nothing here changes a code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, select

from fidelite.processing.tables import coupons, events

STATUSES = ("issued", "used")
"""A code's status as stored: ``issued`` (not used yet, or given back by a refund) or
``used``."""


@dataclass(frozen=True)
class CouponCode:
    """One code as the store knows it."""

    code: str
    campaign: str
    status: str
    member: str | None  # issued to this member only; None: anyone
    issued_at: datetime
    used_event_id: str | None
    used_by: str | None  # the member of the event that used it
    used_at: datetime | None  # when that event happened

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "campaign": self.campaign,
            "status": self.status,
            "member": self.member,
            "issued_at": self.issued_at,
            "used_by": self.used_by,
            "used_event_id": self.used_event_id,
            "used_at": self.used_at,
        }


def _query(program_id: str) -> Select[Any]:
    used = and_(
        events.c.program_id == coupons.c.program_id,
        events.c.event_id == coupons.c.used_event_id,
    )
    return (
        select(
            coupons.c.code,
            coupons.c.campaign,
            coupons.c.status,
            coupons.c.member_ref,
            coupons.c.created_at,
            coupons.c.used_event_id,
            events.c.member_ref.label("by"),
            events.c.occurred_at,
        )
        .select_from(coupons.outerjoin(events, used))
        .where(coupons.c.program_id == program_id)
    )


def _record(row: Any) -> CouponCode:
    code, campaign, status, member, issued_at, event_id, by, at = row
    return CouponCode(code, campaign, status, member, issued_at, event_id, by, at)


def find_code(conn: Connection, program_id: str, code: str) -> CouponCode | None:
    """The code (as issued: upper case, with its dashes), or None if never issued."""
    row = conn.execute(_query(program_id).where(coupons.c.code == code)).first()
    return None if row is None else _record(row)


def campaign_codes(
    conn: Connection,
    program_id: str,
    campaign: str,
    *,
    status: str | None = None,
    after: str | None = None,
    limit: int = 1000,
) -> list[CouponCode]:
    """A campaign's codes in code order, from the one after ``after``, at most ``limit``;
    only those of ``status`` when given."""
    query = _query(program_id).where(coupons.c.campaign == campaign)
    if status is not None:
        query = query.where(coupons.c.status == status)
    if after is not None:
        query = query.where(coupons.c.code > after)
    rows = conn.execute(query.order_by(coupons.c.code).limit(limit)).all()
    return [_record(r) for r in rows]


def campaign_counts(conn: Connection, program_id: str, campaign: str) -> dict[str, int]:
    """How many codes of the campaign are in each status (0 for none)."""
    rows = conn.execute(
        select(coupons.c.status, func.count())
        .where(coupons.c.program_id == program_id, coupons.c.campaign == campaign)
        .group_by(coupons.c.status)
    ).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts
