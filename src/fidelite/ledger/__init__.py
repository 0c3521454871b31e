"""The points ledger: double-entry, append-only, idempotent, safe under concurrency.

What it owns: accounts (per member and currency: ``available``, ``pending``, ``debt``;
per program and currency: ``issued``, ``redeemed``, ``expired``, ``adjustment``,
``written_off``), lots (points earned together, with earn/expiry/pending dates), and
the postings that move points between accounts. Nothing else writes balances.

Invariants (checked by :func:`check_invariants`, backed by database constraints):

1. Points are integers; every transaction's postings sum to zero.
2. A member-side account's cached balance equals the sum of its postings.
3. A lot's remainder equals the sum of its member-side postings; the member's
   available (pending) balance equals the remainders of their available (pending) lots.
4. ``available`` and ``pending`` never go below zero; ``debt`` never above zero.
5. Postings are never updated or deleted; corrections are reversing transactions.
6. Every mutating call carries an idempotency key; a retry returns the first receipt.
"""

from fidelite.ledger.errors import (
    Rejected,
    RejectionCode,
    member_erased,
    no_member,
    unknown_member,
)
from fidelite.ledger.invariants import assert_invariants, check_invariants
from fidelite.ledger.receipts import Balance, HistoryEntry, MemberInfo, Receipt
from fidelite.ledger.service import Ledger, Shortfall

__all__ = [
    "Balance",
    "HistoryEntry",
    "Ledger",
    "MemberInfo",
    "Receipt",
    "Rejected",
    "RejectionCode",
    "Shortfall",
    "assert_invariants",
    "check_invariants",
    "member_erased",
    "no_member",
    "unknown_member",
]
