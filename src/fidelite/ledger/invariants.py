"""The ledger's invariants as queries: each returns the rows that break a rule.

:func:`check_invariants` runs all of them and returns a list of human-readable
violations (empty when the books are sound). Tests call it after every operation;
operators run it as ``fidelite ledger check``.
"""

from __future__ import annotations

from sqlalchemy import text

from fidelite.ledger.errors import Rejected, RejectionCode
from fidelite.store import Database

# (rule, SQL returning offending rows). ``:p`` is the program id or NULL for all.
_CHECKS: list[tuple[str, str]] = [
    (
        "double entry: a transaction's postings sum to zero (and there are at least two)",
        "SELECT t.id, COALESCE(SUM(p.points), 0), COUNT(p.id) FROM ledger_transactions t "
        "LEFT JOIN postings p ON p.transaction_id = t.id WHERE {prog_t} "
        "GROUP BY t.id HAVING COALESCE(SUM(p.points), 0) <> 0 OR COUNT(p.id) < 2",
    ),
    (
        "double entry: per program and currency, all postings sum to zero",
        "SELECT a.program_id, a.currency, SUM(p.points) FROM postings p "
        "JOIN accounts a ON a.id = p.account_id WHERE {prog_a} "
        "GROUP BY a.program_id, a.currency HAVING SUM(p.points) <> 0",
    ),
    (
        "a posting stays within its transaction's program and currency",
        "SELECT p.id, t.id FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
        "JOIN accounts a ON a.id = p.account_id WHERE {prog_t} "
        "AND (a.program_id <> t.program_id OR a.currency <> t.currency "
        "OR (a.member_id IS NOT NULL AND a.member_id <> t.member_id))",
    ),
    (
        "a member's cached balance equals the sum of its postings",
        "SELECT a.id, a.kind, a.balance, COALESCE(SUM(p.points), 0) FROM accounts a "
        "LEFT JOIN postings p ON p.account_id = a.id "
        "WHERE a.member_id IS NOT NULL AND {prog_a} "
        "GROUP BY a.id, a.kind, a.balance HAVING a.balance <> COALESCE(SUM(p.points), 0)",
    ),
    (
        "no negative balance: available and pending >= 0, debt <= 0",
        "SELECT a.id, a.kind, a.balance FROM accounts a WHERE a.member_id IS NOT NULL "
        "AND {prog_a} AND ((a.kind = 'debt' AND a.balance > 0) "
        "OR (a.kind <> 'debt' AND a.balance < 0))",
    ),
    (
        "postings on available/pending name a lot; others do not",
        "SELECT p.id, a.kind, p.lot_id FROM postings p JOIN accounts a ON a.id = p.account_id "
        "WHERE {prog_a} AND ((a.kind IN ('available', 'pending')) <> (p.lot_id IS NOT NULL))",
    ),
    (
        "a lot's remainder equals the sum of its member-side postings",
        "SELECT l.id, l.remaining, COALESCE(SUM(p.points), 0) FROM lots l "
        "LEFT JOIN postings p ON p.lot_id = l.id WHERE {prog_l} "
        "GROUP BY l.id, l.remaining HAVING l.remaining <> COALESCE(SUM(p.points), 0)",
    ),
    (
        "a lot is open (pending/available) exactly when points remain",
        "SELECT l.id, l.state, l.remaining FROM lots l WHERE {prog_l} "
        "AND ((l.state IN ('pending', 'available')) <> (l.remaining > 0) "
        "OR l.remaining > l.points OR l.remaining < 0)",
    ),
    (
        "a member's available/pending balance equals the remainders of those lots",
        "SELECT a.id, a.kind, a.balance, COALESCE(SUM(l.remaining), 0) FROM accounts a "
        "LEFT JOIN lots l ON l.member_id = a.member_id AND l.currency = a.currency "
        "AND l.state = a.kind WHERE a.kind IN ('available', 'pending') AND {prog_a} "
        "GROUP BY a.id, a.kind, a.balance HAVING a.balance <> COALESCE(SUM(l.remaining), 0)",
    ),
    (
        "a transaction's reversed points equal the points of its reversals",
        "SELECT t.id, t.reversed_points, COALESCE(SUM(r.points), 0) FROM ledger_transactions t "
        "LEFT JOIN ledger_transactions r ON r.reverses_id = t.id WHERE {prog_t} "
        "GROUP BY t.id, t.reversed_points HAVING t.reversed_points <> COALESCE(SUM(r.points), 0)",
    ),
]


def check_invariants(db: Database, program_id: str | None = None) -> list[str]:
    """Every violated rule, with up to five offending rows each ([] when sound).

    ``program_id``: only that program's books; a program the database does not hold is
    refused (``unknown_program``), as every command naming a program refuses it, instead
    of reporting its (empty) books sound."""
    scope = {
        "prog_t": "(CAST(:p AS VARCHAR(64)) IS NULL OR t.program_id = :p)",
        "prog_a": "(CAST(:p AS VARCHAR(64)) IS NULL OR a.program_id = :p)",
        "prog_l": "(CAST(:p AS VARCHAR(64)) IS NULL OR l.program_id = :p)",
    }
    problems: list[str] = []
    with db.read() as conn:
        if program_id is not None:
            known = conn.execute(
                text("SELECT 1 FROM programs WHERE id = :p"), {"p": program_id}
            ).first()
            if known is None:
                raise Rejected(
                    RejectionCode.UNKNOWN_PROGRAM,
                    f"no program {program_id!r}",
                    field="program_id",
                )
        for rule, sql in _CHECKS:
            rows = conn.execute(text(sql.format(**scope)), {"p": program_id}).all()
            if rows:
                sample = ", ".join(str(tuple(r)) for r in rows[:5])
                problems.append(f"{rule}: {len(rows)} violation(s), e.g. {sample}")
    return problems


class InvariantViolation(AssertionError):
    """The books are not sound (a bug or a tampered database)."""


def assert_invariants(db: Database, program_id: str | None = None) -> None:
    """Raise :class:`InvariantViolation` listing every broken rule."""
    problems = check_invariants(db, program_id)
    if problems:
        raise InvariantViolation("\n".join(problems))
