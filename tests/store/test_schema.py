"""The schema: migrations match the models on both databases, and the database itself
refuses what the ledger must never do (last line of defence)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

import fidelite.api.tables  # every table of the schema in the metadata compared below
import fidelite.processing.tables
import fidelite.webhooks.tables  # noqa: F401
from fidelite.store import Database
from fidelite.store.migrate import current_revision, head_revision
from fidelite.store.tables import Base
from tests.support import T0, CheckedLedger


def test_migrations_reach_head_and_match_the_models(db: Database) -> None:
    assert current_revision(db) == head_revision(db)
    with db.writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(db: Database) -> None:
    db.upgrade()
    assert current_revision(db) == head_revision(db)


def _seed(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T0)


def test_postings_cannot_be_updated_or_deleted(ledger: CheckedLedger) -> None:
    _seed(ledger)
    for sql in ("UPDATE postings SET points = points + 1", "DELETE FROM postings"):
        with pytest.raises(DBAPIError, match="append-only"), ledger.db.write() as conn:
            conn.execute(text(sql))


def test_ledger_transactions_cannot_be_rewritten(ledger: CheckedLedger) -> None:
    _seed(ledger)
    for sql in ("UPDATE ledger_transactions SET points = 1", "DELETE FROM ledger_transactions"):
        with pytest.raises(DBAPIError, match="append-only"), ledger.db.write() as conn:
            conn.execute(text(sql))


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE accounts SET balance = -1 WHERE kind = 'available'",
        "UPDATE accounts SET balance = 5 WHERE kind = 'debt'",
        "UPDATE lots SET remaining = points + 1",
        "UPDATE lots SET remaining = 0",  # an open lot must have points left
        "UPDATE ledger_transactions SET reversed_points = points + 1",
        "INSERT INTO members (program_id, ref, status, created_at) "
        "VALUES ('shop', 'alice', 'active', '2026-01-01')",
    ],
)
def test_constraints_refuse_impossible_states(ledger: CheckedLedger, sql: str) -> None:
    _seed(ledger)
    with pytest.raises(IntegrityError), ledger.db.write() as conn:
        conn.execute(text(sql))


def test_program_side_accounts_are_unique(ledger: CheckedLedger) -> None:
    with pytest.raises(IntegrityError), ledger.db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (program_id, currency, kind, member_id, balance) "
                "VALUES ('shop', 'points', 'issued', NULL, NULL)"
            )
        )


def test_check_invariants_detects_a_tampered_balance(ledger: CheckedLedger) -> None:
    from fidelite.ledger import check_invariants

    _seed(ledger)
    with ledger.db.write() as conn:
        conn.execute(text("UPDATE accounts SET balance = balance + 7 WHERE kind = 'available'"))
    problems = check_invariants(ledger.db)
    assert [p.split(":")[0] for p in problems] == [
        "a member's cached balance equals the sum of its postings",
        "a member's available/pending balance equals the remainders of those lots",
    ]
