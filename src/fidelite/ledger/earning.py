"""What an earn is, checked once and planned the same way by single and batched earns.

:meth:`fidelite.ledger.service.Ledger.earn` and :class:`fidelite.ledger.batch.EarnBatch`
both build an :class:`EarnOrder` with :func:`earn_order` (same checks, same request
fingerprint) and turn it into a :class:`~fidelite.ledger.plan.Plan` with
:func:`earn_plan`, so the two paths write identical rows for identical input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fidelite.ledger import validation as valid
from fidelite.ledger.errors import invalid
from fidelite.ledger.idempotency import request_hash
from fidelite.ledger.plan import NEW_LOT, NewLot, Plan, Target


@dataclass(frozen=True)
class EarnOrder:
    """A checked earn: ``points`` > 0, expiry after ``at``, pending end before expiry."""

    member_ref: str
    currency: str
    points: int
    key: str
    at: datetime
    expires_at: datetime | None
    pending_until: datetime | None
    reason: str
    source: str | None
    detail: dict[str, Any] | None
    digest: str


def earn_order(
    member_ref: str,
    currency: str,
    points: Any,
    *,
    key: str,
    at: datetime,
    at_given: bool,
    expires_at: datetime | str | None,
    pending_until: datetime | str | None,
    reason: str,
    source: str | None,
    detail: dict[str, Any] | None,
) -> EarnOrder:
    """Check an earn (raises ``Rejected(invalid_request)`` naming the field)."""
    pts = valid.points(points)
    expiry = valid.optional_moment(expires_at, "expires_at")
    pending = valid.optional_moment(pending_until, "pending_until")
    if expiry is not None and expiry <= at:
        raise invalid("expires_at", "must be later than the time of earning")
    if pending is not None and expiry is not None and pending >= expiry:
        raise invalid("pending_until", "must be earlier than expires_at")
    request = {
        "op": "earn", "member_ref": member_ref, "currency": currency, "points": pts,
        "at": at if at_given else None, "expires_at": expiry, "pending_until": pending,
        "reason": reason, "source": source, "detail": detail,
    }  # fmt: skip
    checked_reason = valid.text(reason, "reason")
    assert checked_reason is not None
    return EarnOrder(member_ref, currency, pts, valid.key(key), at, expiry, pending,
                     checked_reason, valid.text(source, "source", required=False), detail,
                     request_hash(request))  # fmt: skip


def earn_plan(order: EarnOrder, target: Target) -> Plan:
    """The plan of an earn: a new lot, pending if its pending end is still ahead."""
    plan = Plan("earn", "credit", order.points, order.reason, order.source, detail=order.detail)
    held = order.pending_until is not None and order.pending_until > order.at
    credit_new_lot(plan, target, order.points, "issued", order.at, order.expires_at,
                   order.pending_until if held else None)  # fmt: skip
    return plan


def credit_new_lot(
    plan: Plan,
    target: Target,
    points: int,
    program_kind: str,
    when: datetime,
    expires_at: datetime | None,
    pending_until: datetime | None,
) -> None:
    """Credit ``points`` from ``program_kind``: available credits repay debt first."""
    plan.program(program_kind, -points)
    repay = 0 if pending_until else min(points, -target.member_balances["debt"])
    if repay:
        plan.member("debt", None, repay)
        plan.debt_repaid = repay
    rest = points - repay
    if rest:
        state = "pending" if pending_until else "available"
        plan.new_lot = NewLot(rest, state, when, expires_at, pending_until)
        plan.member(state, NEW_LOT, rest)
