"""The ledger's invariants as queries: each returns the rows that break a rule.

:func:`find_violations` runs all of them and returns each broken rule with how many rows
break it and up to five of them, each a mapping of labelled fields (members by their
reference, numbers as plain integers, times in ISO 8601). :func:`check_invariants` gives
the same as human-readable lines (empty when the books are sound). Tests call it after
every operation; operators run it as ``fidelite ledger check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from fidelite.ledger.errors import Rejected, RejectionCode
from fidelite.store import Database

SAMPLES = 5
"""How many offending rows each violation shows."""

# (rule, SQL returning offending rows, its columns labelled). ``:p`` is the program id or
# NULL for all. A member is named by its reference (``member``), never by an internal id.
_CHECKS: list[tuple[str, str]] = [
    (
        "double entry: a transaction's postings sum to zero (and there are at least two)",
        'SELECT t.id AS "transaction", m.ref AS "member", COALESCE(SUM(p.points), 0) AS "sum", '
        'COUNT(p.id) AS "postings" FROM ledger_transactions t '
        "LEFT JOIN members m ON m.id = t.member_id "
        "LEFT JOIN postings p ON p.transaction_id = t.id WHERE {prog_t} "
        "GROUP BY t.id, m.ref HAVING COALESCE(SUM(p.points), 0) <> 0 OR COUNT(p.id) < 2 "
        "ORDER BY t.id",
    ),
    (
        "double entry: per program and currency, all postings sum to zero",
        'SELECT a.program_id AS "program", a.currency AS "currency", SUM(p.points) AS "sum" '
        "FROM postings p JOIN accounts a ON a.id = p.account_id WHERE {prog_a} "
        "GROUP BY a.program_id, a.currency HAVING SUM(p.points) <> 0 "
        "ORDER BY a.program_id, a.currency",
    ),
    (
        "a transaction's points equal the points it moves (the sum of its positive postings)",
        'SELECT t.id AS "transaction", m.ref AS "member", t.kind AS "kind", t.points AS "points", '
        'COALESCE(SUM(CASE WHEN p.points > 0 THEN p.points END), 0) AS "moved" '
        "FROM ledger_transactions t LEFT JOIN members m ON m.id = t.member_id "
        "LEFT JOIN postings p ON p.transaction_id = t.id WHERE {prog_t} "
        "GROUP BY t.id, m.ref, t.kind, t.points "
        "HAVING t.points <> COALESCE(SUM(CASE WHEN p.points > 0 THEN p.points END), 0) "
        "ORDER BY t.id",
    ),
    (
        "a posting stays within its transaction's program and currency",
        'SELECT p.id AS "posting", t.id AS "transaction", m.ref AS "member", '
        'a.program_id AS "account_program", a.currency AS "account_currency" '
        "FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
        "JOIN accounts a ON a.id = p.account_id LEFT JOIN members m ON m.id = t.member_id "
        "WHERE {prog_t} "
        "AND (a.program_id <> t.program_id OR a.currency <> t.currency "
        "OR (a.member_id IS NOT NULL AND a.member_id <> t.member_id)) ORDER BY p.id",
    ),
    (
        "a posting's lot belongs to the posting's account (its member, program and currency)",
        'SELECT p.id AS "posting", p.transaction_id AS "transaction", l.id AS "lot", '
        'am.ref AS "account_member", lm.ref AS "lot_member", a.currency AS "account_currency", '
        'l.currency AS "lot_currency" FROM postings p JOIN accounts a ON a.id = p.account_id '
        "JOIN lots l ON l.id = p.lot_id LEFT JOIN members am ON am.id = a.member_id "
        "LEFT JOIN members lm ON lm.id = l.member_id WHERE {prog_a} "
        "AND (a.member_id IS NULL OR a.member_id <> l.member_id "
        "OR a.program_id <> l.program_id OR a.currency <> l.currency) ORDER BY p.id",
    ),
    (
        "a member's cached balance equals the sum of its postings",
        'SELECT m.ref AS "member", a.currency AS "currency", a.kind AS "account", '
        'a.balance AS "balance", COALESCE(SUM(p.points), 0) AS "postings" FROM accounts a '
        "JOIN members m ON m.id = a.member_id LEFT JOIN postings p ON p.account_id = a.id "
        "WHERE {prog_a} GROUP BY a.id, m.ref, a.currency, a.kind, a.balance "
        "HAVING a.balance <> COALESCE(SUM(p.points), 0) ORDER BY a.id",
    ),
    (
        "no negative balance: available and pending >= 0, debt <= 0",
        'SELECT m.ref AS "member", a.currency AS "currency", a.kind AS "account", '
        'a.balance AS "balance" FROM accounts a JOIN members m ON m.id = a.member_id '
        "WHERE {prog_a} AND ((a.kind = 'debt' AND a.balance > 0) "
        "OR (a.kind <> 'debt' AND a.balance < 0)) ORDER BY a.id",
    ),
    (
        "postings on available/pending name a lot; others do not",
        'SELECT p.id AS "posting", p.transaction_id AS "transaction", a.kind AS "account", '
        'p.lot_id AS "lot" FROM postings p JOIN accounts a ON a.id = p.account_id '
        "WHERE {prog_a} AND ((a.kind IN ('available', 'pending')) <> (p.lot_id IS NOT NULL)) "
        "ORDER BY p.id",
    ),
    (
        "a lot's remainder equals the sum of its member-side postings",
        'SELECT l.id AS "lot", m.ref AS "member", l.remaining AS "remaining", '
        'COALESCE(SUM(p.points), 0) AS "postings" FROM lots l JOIN members m ON m.id = l.member_id '
        "LEFT JOIN postings p ON p.lot_id = l.id WHERE {prog_l} "
        "GROUP BY l.id, m.ref, l.remaining HAVING l.remaining <> COALESCE(SUM(p.points), 0) "
        "ORDER BY l.id",
    ),
    (
        "a lot's points equal what its earn (or credit) put in it",
        'SELECT l.id AS "lot", m.ref AS "member", l.earn_transaction_id AS "transaction", '
        'l.points AS "points", COALESCE(SUM(p.points), 0) AS "credited" FROM lots l '
        "JOIN members m ON m.id = l.member_id LEFT JOIN postings p ON p.lot_id = l.id "
        "AND p.transaction_id = l.earn_transaction_id WHERE {prog_l} "
        "GROUP BY l.id, m.ref, l.earn_transaction_id, l.points "
        "HAVING l.points <> COALESCE(SUM(p.points), 0) ORDER BY l.id",
    ),
    (
        "a lot is open (pending/available) exactly when points remain",
        'SELECT l.id AS "lot", m.ref AS "member", l.state AS "state", l.points AS "points", '
        'l.remaining AS "remaining" FROM lots l JOIN members m ON m.id = l.member_id '
        "WHERE {prog_l} AND ((l.state IN ('pending', 'available')) <> (l.remaining > 0) "
        "OR l.remaining > l.points OR l.remaining < 0) ORDER BY l.id",
    ),
    (
        "a pending lot has the end of its hold (pending_until)",
        'SELECT l.id AS "lot", m.ref AS "member", l.remaining AS "remaining" FROM lots l '
        "JOIN members m ON m.id = l.member_id WHERE {prog_l} "
        "AND l.state = 'pending' AND l.pending_until IS NULL ORDER BY l.id",
    ),
    (
        "a lot's hold does not end after its expiry date (pending_until <= expires_at)",
        'SELECT l.id AS "lot", m.ref AS "member", l.pending_until AS "pending_until", '
        'l.expires_at AS "expires_at" FROM lots l JOIN members m ON m.id = l.member_id '
        "WHERE {prog_l} AND l.pending_until IS NOT NULL AND l.expires_at IS NOT NULL "
        "AND l.pending_until > l.expires_at ORDER BY l.id",
    ),
    (
        "a member's available/pending balance equals the remainders of those lots",
        'SELECT m.ref AS "member", a.currency AS "currency", a.kind AS "account", '
        'a.balance AS "balance", COALESCE(SUM(l.remaining), 0) AS "lots" FROM accounts a '
        "JOIN members m ON m.id = a.member_id "
        "LEFT JOIN lots l ON l.member_id = a.member_id AND l.currency = a.currency "
        "AND l.state = a.kind WHERE a.kind IN ('available', 'pending') AND {prog_a} "
        "GROUP BY a.id, m.ref, a.currency, a.kind, a.balance "
        "HAVING a.balance <> COALESCE(SUM(l.remaining), 0) ORDER BY a.id",
    ),
    (
        "a transaction's reversed points equal the points of its reversals",
        'SELECT t.id AS "transaction", m.ref AS "member", t.reversed_points AS "reversed_points", '
        'COALESCE(SUM(r.points), 0) AS "reversals" FROM ledger_transactions t '
        "LEFT JOIN members m ON m.id = t.member_id "
        "LEFT JOIN ledger_transactions r ON r.reverses_id = t.id WHERE {prog_t} "
        "GROUP BY t.id, m.ref, t.reversed_points "
        "HAVING t.reversed_points <> COALESCE(SUM(r.points), 0) ORDER BY t.id",
    ),
    (
        "a reversal is not dated before the transaction it reverses",
        'SELECT t.id AS "transaction", m.ref AS "member", t.occurred_at AS "occurred_at", '
        'o.id AS "reverses", o.occurred_at AS "original_at" FROM ledger_transactions t '
        "JOIN ledger_transactions o ON o.id = t.reverses_id "
        "LEFT JOIN members m ON m.id = t.member_id WHERE {prog_t} "
        "AND t.occurred_at < o.occurred_at ORDER BY t.id",
    ),
    (
        "no move takes points from a lot before the lot was earned "
        "(a release or debit dated before the earn)",
        'SELECT t.id AS "transaction", m.ref AS "member", t.kind AS "kind", '
        't.occurred_at AS "occurred_at", l.id AS "lot", l.earned_at AS "earned_at" '
        "FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id "
        "JOIN lots l ON l.id = p.lot_id LEFT JOIN members m ON m.id = t.member_id "
        "JOIN ledger_transactions e ON e.id = l.earn_transaction_id "
        "WHERE {prog_t} AND p.points < 0 AND t.occurred_at < l.earned_at "
        # a lot dated ahead of the clock (a program's future tolerance) is held from its
        # recording; a reversal's shortfall draws what the member held when recorded
        "AND t.occurred_at < e.recorded_at AND NOT (t.kind = 'reverse' "
        "AND l.earn_transaction_id <> t.reverses_id AND e.recorded_at <= t.recorded_at) "
        "ORDER BY p.id",
    ),
    (
        "an idempotency key is used once per program",
        'SELECT t.program_id AS "program", t.idempotency_key AS "key", COUNT(*) AS "transactions" '
        "FROM ledger_transactions t WHERE {prog_t} GROUP BY t.program_id, t.idempotency_key "
        "HAVING COUNT(*) > 1 ORDER BY t.program_id, t.idempotency_key",
    ),
]


@dataclass(frozen=True)
class Violation:
    """A broken rule: how many rows break it and up to :data:`SAMPLES` of them."""

    rule: str
    count: int
    sample: list[dict[str, Any]]

    def message(self) -> str:
        """``rule: N violation(s), e.g. transaction=12 member=CARD-1 sum=10; ...``."""
        rows = "; ".join(
            " ".join(f"{name}={_shown(value)}" for name, value in row.items())
            for row in self.sample
        )
        return f"{self.rule}: {self.count} violation(s), e.g. {rows}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``fidelite ledger check -f json``)."""
        return {
            "rule": self.rule,
            "count": self.count,
            "sample": self.sample,
            "message": self.message(),
        }


def find_violations(db: Database, program_id: str | None = None) -> list[Violation]:
    """Every violated rule, with up to five offending rows each ([] when sound).

    ``program_id``: only that program's books; a program the database does not hold is
    refused (``unknown_program``), as every command naming a program refuses it, instead
    of reporting its (empty) books sound."""
    scope = {
        "prog_t": "(CAST(:p AS VARCHAR(64)) IS NULL OR t.program_id = :p)",
        "prog_a": "(CAST(:p AS VARCHAR(64)) IS NULL OR a.program_id = :p)",
        "prog_l": "(CAST(:p AS VARCHAR(64)) IS NULL OR l.program_id = :p)",
    }
    found: list[Violation] = []
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
            result = conn.execute(text(sql.format(**scope)), {"p": program_id})
            names = list(result.keys())
            rows = result.all()
            if rows:
                sample = [
                    {name: _plain(value) for name, value in zip(names, row, strict=True)}
                    for row in rows[:SAMPLES]
                ]
                found.append(Violation(rule, len(rows), sample))
    return found


def check_invariants(db: Database, program_id: str | None = None) -> list[str]:
    """Every violated rule as a line, with up to five offending rows each ([] when sound)."""
    return [violation.message() for violation in find_violations(db, program_id)]


def _plain(value: Any) -> Any:
    """A sample's value as JSON gives it: whole numbers as ints (PostgreSQL's sums are
    ``Decimal``), times in ISO 8601, the rest as stored."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)


class InvariantViolation(AssertionError):
    """The books are not sound (a bug or a tampered database)."""


def assert_invariants(db: Database, program_id: str | None = None) -> None:
    """Raise :class:`InvariantViolation` listing every broken rule."""
    problems = check_invariants(db, program_id)
    if problems:
        raise InvariantViolation("\n".join(problems))
