"""Business rejections: enumerated codes, raised as :class:`Rejected`.

A rejection means the request was understood and refused; nothing was written. Any
other exception escaping the ledger is a bug or an infrastructure failure.

Precedence, when several apply, is fixed: ``invalid_request`` (the input itself) →
``unknown_program`` → ``unknown_member`` / ``member_erased`` / ``unknown_transaction`` →
idempotency
(replay or ``idempotency_conflict``) → ``unknown_currency`` → the operation's own
business codes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class RejectionCode(StrEnum):
    """Stable codes a client can branch on (also used as problem ``type`` suffixes)."""

    INVALID_REQUEST = "invalid_request"
    UNKNOWN_PROGRAM = "unknown_program"
    UNKNOWN_MEMBER = "unknown_member"
    MEMBER_ERASED = "member_erased"
    UNKNOWN_CURRENCY = "unknown_currency"
    UNKNOWN_TRANSACTION = "unknown_transaction"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    MEMBER_EXISTS = "member_exists"
    INSUFFICIENT_POINTS = "insufficient_points"
    POINTS_ALREADY_SPENT = "points_already_spent"
    NOT_REVERSIBLE = "not_reversible"
    REVERSAL_EXCEEDS_ORIGINAL = "reversal_exceeds_original"
    NOT_PENDING = "not_pending"


class Rejected(Exception):
    """A refused request. ``field`` names the offending input when there is one."""

    def __init__(
        self,
        code: RejectionCode,
        message: str,
        *,
        field: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.detail = detail or {}

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form used by the CLI and the API."""
        out: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.field:
            out["field"] = self.field
        if self.detail:
            out["detail"] = self.detail
        return out


PROGRAM_SHORTFALL_HINT = (
    "to reverse them anyway, set refunds.shortfall: within_balance or debt in the program file"
)
"""How ``points_already_spent`` ends: what the operator changes for a refund event (the
ledger's reversals with ``shortfall='reject'`` come from refunds under the program's
``refunds.shortfall: reject``); a caller with its own option says so instead
(:func:`already_spent`, ``fidelite ledger reverse --shortfall``)."""


def already_spent(short: int, amount: int, hint: str = PROGRAM_SHORTFALL_HINT) -> Rejected:
    """``points_already_spent``: ``short`` of the ``amount`` points a reversal takes back
    were already used, and the shortfall policy is ``reject``; ``hint`` says how to
    allow it."""
    return Rejected(
        RejectionCode.POINTS_ALREADY_SPENT,
        f"{short} of the {amount} points to reverse were already used; {hint}",
        field="shortfall",
        detail={"shortfall": short},
    )


def no_member(program_id: str, ref: str) -> str:
    """The one wording of ``unknown_member`` every layer gives (ledger, processing,
    privacy, the API and the CLI): the reference and the program, so that a client of
    several programs sees which one lacks the member."""
    return f"no member {ref!r} in program {program_id!r}"


def unknown_member(program_id: str, ref: str) -> Rejected:
    """The ledger's ``unknown_member`` (:func:`no_member`), naming the field."""
    return Rejected(RejectionCode.UNKNOWN_MEMBER, no_member(program_id, ref), field="member_ref")


def member_erased(program_id: str, ref: str) -> Rejected:
    """The one refusal of a write on an erased member's account, named by its tombstone
    (``erased-<member id>``): the account keeps the books (balance, lots, history stay
    readable, the expiry and release jobs still move its lots) but takes no new
    activity, so that no points, profile data or webhook event reach it again. Names
    the tombstone as sent, never the erased reference (nothing here knows it)."""
    return Rejected(
        RejectionCode.MEMBER_ERASED,
        f"member {ref!r} of program {program_id!r} was erased: its account takes no more "
        "changes (its balance and history stay readable)",
        field="member_ref",
    )


def invalid(field: str, message: str) -> Rejected:
    """Shorthand for an ``invalid_request`` naming ``field``."""
    return Rejected(RejectionCode.INVALID_REQUEST, f"{field}: {message}", field=field)
