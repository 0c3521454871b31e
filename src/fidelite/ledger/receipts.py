"""What the ledger returns: receipts of operations, balances, history entries."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class LotMove:
    """Points moved on one lot by one operation (negative = drawn from the lot)."""

    lot_id: int
    points: int


@dataclass(frozen=True)
class Receipt:
    """The result of a mutating operation, stored with its transaction.

    A retry with the same idempotency key returns an equal receipt (``replayed`` is
    True on the retry and excluded from equality). Balances are those right after the
    operation, not at the time of the retry.
    """

    transaction_id: int
    kind: str
    direction: str
    program_id: str
    member_ref: str | None
    currency: str
    points: int
    occurred_at: datetime
    available_after: int
    pending_after: int
    debt_after: int
    lot_moves: tuple[LotMove, ...] = ()
    debt_repaid: int = 0
    shortfall: int = 0
    written_off: int = 0
    debt_added: int = 0
    reverses_id: int | None = None
    already_expired: int = 0  # reversing an earn: points that had expired (not a shortfall)
    replayed: bool = field(default=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields (all but ``replayed``); read back by :meth:`from_json`."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "replayed"}
        data["occurred_at"] = self.occurred_at.isoformat()
        data["lot_moves"] = [{"lot_id": m.lot_id, "points": m.points} for m in self.lot_moves]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool = False) -> Receipt:
        values = dict(data)
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        values["lot_moves"] = tuple(LotMove(**m) for m in values["lot_moves"])
        return cls(**values, replayed=replayed)


@dataclass(frozen=True)
class Balance:
    """A member's points in one currency as of a moment.

    ``available``: spendable now (lots not yet due to expire); ``pending``: earned but
    held (e.g. return window); ``expiring_soon``: part of ``available`` that expires
    within the window, by its lot's date or, under an inactivity policy, at the deadline
    the member's last activity sets (each point once, at the earlier); ``next_expiry``:
    the first of those instants; ``debt``: points owed after a refund clawback (>= 0 here).
    """

    member_ref: str
    currency: str
    as_of: datetime
    available: int
    pending: int
    expiring_soon: int
    expiring_window_days: int
    debt: int
    next_expiry: datetime | None


@dataclass(frozen=True)
class HistoryEntry:
    """One ledger transaction as seen from a member's accounts."""

    transaction_id: int
    kind: str
    occurred_at: datetime
    currency: str
    available_change: int
    pending_change: int
    debt_change: int
    reason: str
    source: str | None
    actor: str | None
    reverses_id: int | None
    reversed_points: int
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class MemberInfo:
    """A member as the ledger knows it."""

    member_id: int
    program_id: str
    ref: str
    status: str
    created_at: datetime
    replayed: bool = field(default=False, compare=False)
