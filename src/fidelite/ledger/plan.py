"""A planned ledger transaction and the one function that writes it.

Operations (in :mod:`fidelite.ledger.service`) read state under the member lock and
build a :class:`Plan`: postings, lot changes and the receipt fields. :func:`apply`
is then the only code that inserts postings and changes balances, so the double-entry
rule (postings sum to zero) is checked in one place before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from fidelite.ledger.receipts import LotMove, Receipt
from fidelite.ledger.state import UnsettledLot
from fidelite.store import locking
from fidelite.store.tables import LedgerTransaction, Lot, Posting

NEW_LOT = -1
"""Stands for the lot the plan creates, whose id is allocated when it is applied."""


@dataclass(frozen=True)
class NewLot:
    """The lot an earn or a credit creates."""

    points: int
    state: str
    earned_at: datetime
    expires_at: datetime | None
    pending_until: datetime | None


@dataclass
class Plan:
    """Everything one ledger transaction will write."""

    kind: str
    direction: str
    points: int
    reason: str
    source: str | None = None
    actor: str | None = None
    detail: dict[str, Any] | None = None
    reverses_id: int | None = None
    member_postings: list[tuple[str, int | None, int]] = field(default_factory=list)
    program_postings: list[tuple[str, int]] = field(default_factory=list)
    new_lot: NewLot | None = None
    draws: list[tuple[int, int, str]] = field(default_factory=list)
    refills: list[tuple[int, int]] = field(default_factory=list)
    releases: list[int] = field(default_factory=list)
    debt_repaid: int = 0
    shortfall: int = 0
    written_off: int = 0
    debt_added: int = 0
    already_expired: int = 0

    def member(self, kind: str, lot_id: int | None, points: int) -> None:
        """Post ``points`` on the member's ``kind`` account (lot given for available/pending)."""
        if points:
            self.member_postings.append((kind, lot_id, points))

    def program(self, kind: str, points: int) -> None:
        """Post ``points`` on the program's ``kind`` account."""
        if points:
            self.program_postings.append((kind, points))

    def deltas(self) -> dict[str, int]:
        """Net change per member-side account kind."""
        out: dict[str, int] = {}
        for kind, _, points in self.member_postings:
            out[kind] = out.get(kind, 0) + points
        return out


@dataclass(frozen=True)
class Target:
    """Where a plan applies: the member, currency and account ids involved."""

    program_id: str
    member_id: int
    member_ref: str
    currency: str
    member_accounts: dict[str, int]
    member_balances: dict[str, int]
    program_accounts: dict[str, int]


def apply(
    conn: Connection,
    plan: Plan,
    target: Target,
    *,
    key: str,
    request_hash: str,
    occurred_at: datetime,
    recorded_at: datetime,
    unsettled: list[UnsettledLot] | None = None,
) -> Receipt:
    """Write ``plan`` as one ledger transaction and return its receipt.

    ``unsettled``: the member's lots whose account is not what they truly hold at
    ``occurred_at`` (:func:`settled_after`); ``None``: the receipt reports the accounts.
    """
    check_balanced(plan)
    txn_id = locking.next_id(conn, "ledger_transactions")
    lot_id = locking.next_id(conn, "lots") if plan.new_lot else None
    receipt = receipt_of(plan, target, txn_id, lot_id, occurred_at, unsettled)
    conn.execute(
        insert(LedgerTransaction),
        transaction_row(plan, target, receipt, key, request_hash, recorded_at),
    )
    if plan.new_lot is not None:
        conn.execute(insert(Lot), lot_row(plan.new_lot, lot_id, txn_id, target))
    _change_lots(conn, plan)
    conn.execute(insert(Posting), posting_rows(plan, target, txn_id, lot_id))
    for kind, delta in plan.deltas().items():
        locking.add_to_balance(conn, target.member_accounts[kind], delta)
    return receipt


def check_balanced(plan: Plan) -> None:
    """The double-entry rule: a plan's postings sum to zero (a bug otherwise)."""
    total = sum(p for _, _, p in plan.member_postings) + sum(p for _, p in plan.program_postings)
    if total != 0:
        raise AssertionError(f"unbalanced {plan.kind}: postings sum to {total}")


def transaction_row(
    plan: Plan, target: Target, receipt: Receipt, key: str, request_hash: str, recorded_at: datetime
) -> dict[str, Any]:
    """The ``ledger_transactions`` row of an applied plan (its receipt is its result)."""
    return {
        "id": receipt.transaction_id,
        "program_id": target.program_id,
        "idempotency_key": key,
        "request_hash": request_hash,
        "kind": plan.kind,
        "member_id": target.member_id,
        "currency": target.currency,
        "points": plan.points,
        "reversed_points": 0,
        "reverses_id": plan.reverses_id,
        "reason": plan.reason,
        "source": plan.source,
        "actor": plan.actor,
        "detail": plan.detail,
        "occurred_at": receipt.occurred_at,
        "recorded_at": recorded_at,
        "result": receipt.to_json(),
    }


def receipt_of(
    plan: Plan,
    target: Target,
    txn_id: int,
    lot_id: int | None,
    occurred_at: datetime,
    unsettled: list[UnsettledLot] | None = None,
) -> Receipt:
    """The receipt of ``plan`` applied as transaction ``txn_id`` (new lot ``lot_id``).

    Its ``available_after``, ``pending_after`` and ``debt_after`` are the member's
    accounts right after the plan, settled as :func:`settled_after` says when
    ``unsettled`` is given.
    """
    after = dict(target.member_balances)
    for kind, delta in plan.deltas().items():
        after[kind] = after.get(kind, 0) + delta
    if unsettled is not None:
        after = settled_after(plan, after, unsettled)
    moves: dict[int, int] = {}
    for kind, lot, points in plan.member_postings:
        if lot is not None and kind in ("available", "pending"):
            resolved = lot_id if lot == NEW_LOT else lot
            assert resolved is not None
            moves[resolved] = moves.get(resolved, 0) + points
    return Receipt(
        transaction_id=txn_id,
        kind=plan.kind,
        direction=plan.direction,
        program_id=target.program_id,
        member_ref=target.member_ref,
        currency=target.currency,
        points=plan.points,
        occurred_at=occurred_at,
        available_after=after.get("available", 0),
        pending_after=after.get("pending", 0),
        debt_after=-after.get("debt", 0),
        lot_moves=tuple(LotMove(k, v) for k, v in moves.items() if v),
        debt_repaid=plan.debt_repaid,
        shortfall=plan.shortfall,
        written_off=plan.written_off,
        debt_added=plan.debt_added,
        reverses_id=plan.reverses_id,
        already_expired=plan.already_expired,
    )


def settled_after(
    plan: Plan, accounts: dict[str, int], unsettled: list[UnsettledLot]
) -> dict[str, int]:
    """What the member truly holds once ``plan`` is applied, by account kind, given
    their ``accounts`` right after it (``available``, ``pending``, ``debt`` <= 0).

    The accounts still count an :class:`~fidelite.ledger.state.UnsettledLot`'s points
    where its state says. Truly, as :meth:`~fidelite.ledger.service.Ledger.balance`
    counts them, a lot whose hold has ended is released: its points repay debt first
    (lot by lot, in lot order, as the release job would), the rest is available; and a
    lot past its date or lapsed is gone. The plan's own draws, refills (a refill reopens
    a closed lot: it must be among ``unsettled``) and releases of those lots are
    followed, so no point is counted twice or dropped. A plan's new lot is never
    unsettled: a credit expires after its time, and a hold that has ended at the time
    of earning is no hold.
    """
    out = dict(accounts)
    moved: dict[int, int] = {}
    for lot_id, points, _ in plan.draws:
        moved[lot_id] = moved.get(lot_id, 0) - points
    for lot_id, points in plan.refills:
        moved[lot_id] = moved.get(lot_id, 0) + points
    for lot in unsettled:
        left = lot.remaining + moved.get(lot.id, 0)
        if lot.state == "pending" and lot.id not in plan.releases:
            out["pending"] = out.get("pending", 0) - left
            repay = min(left, -out.get("debt", 0))
            out["debt"] = out.get("debt", 0) + repay
            left -= repay
        else:  # available, released by the plan, or closed and refilled by it
            out["available"] = out.get("available", 0) - left
        if not lot.gone:
            out["available"] = out.get("available", 0) + left
    return out


def lot_row(lot: NewLot, lot_id: int | None, txn_id: int, target: Target) -> dict[str, Any]:
    """The ``lots`` row of a plan's new lot."""
    return {
        "id": lot_id,
        "program_id": target.program_id,
        "member_id": target.member_id,
        "currency": target.currency,
        "earn_transaction_id": txn_id,
        "points": lot.points,
        "remaining": lot.points,
        "state": lot.state,
        "earned_at": lot.earned_at,
        "expires_at": lot.expires_at,
        "pending_until": lot.pending_until,
    }


def _change_lots(conn: Connection, plan: Plan) -> None:
    for lot in plan.releases:
        locking.release_lot(conn, lot)
    for lot, points, closed_state in plan.draws:
        locking.draw_lot(conn, lot, points, closed_state)
    for lot, points in plan.refills:
        locking.refill_lot(conn, lot, points)


def posting_rows(
    plan: Plan, target: Target, txn_id: int, lot_id: int | None
) -> list[dict[str, Any]]:
    """The ``postings`` rows of an applied plan, member side first."""
    return [
        {
            "transaction_id": txn_id,
            "account_id": target.member_accounts[kind],
            "lot_id": lot_id if lot == NEW_LOT else lot,
            "points": points,
        }
        for kind, lot, points in plan.member_postings
    ] + [
        {
            "transaction_id": txn_id,
            "account_id": target.program_accounts[kind],
            "lot_id": None,
            "points": points,
        }
        for kind, points in plan.program_postings
    ]
