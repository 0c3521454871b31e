"""Test helpers: a ledger wrapper that checks the books around every call; a wait for
sessions blocked on a lock (PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from fidelite.ledger import Ledger, Rejected, assert_invariants
from fidelite.store import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)

_MUTATING = {
    "open_program", "create_member", "earn", "release", "spend", "adjust", "reverse",
    "expire", "release_due",
}  # fmt: skip


def waits_on_a_row_lock(holder: Connection, count: int, deadline: float = 30.0) -> bool:
    """True once ``count`` other sessions wait for a row lock (polled; False at deadline)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')"
    )
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        # The holder is inside its transaction, where pg_stat_activity is read once
        # and kept: drop that snapshot to see the other sessions as they are now.
        holder.execute(text("SELECT pg_stat_clear_snapshot()"))
        if holder.execute(waiting).scalar_one() >= count:
            return True
        time.sleep(0.02)
    return False


def snapshot(db: Database) -> tuple[Any, ...]:
    """Everything a ledger call could change, to prove a rejected call changed nothing."""
    with db.read() as conn:
        return tuple(
            tuple(tuple(r) for r in conn.execute(text(sql)).all())
            for sql in (
                "SELECT id, program_id, ref, status FROM members ORDER BY id",
                "SELECT id, kind, member_id, currency, balance FROM accounts ORDER BY id",
                "SELECT id, kind, points, reversed_points FROM ledger_transactions ORDER BY id",
                "SELECT id, transaction_id, account_id, lot_id, points FROM postings ORDER BY id",
                "SELECT id, remaining, state FROM lots ORDER BY id",
                "SELECT program_id, key FROM idempotency_records ORDER BY key",
            )
        )


class CheckedLedger:
    """A :class:`Ledger` whose every call is followed by ``assert_invariants``;
    a call that is rejected must leave :func:`snapshot` unchanged."""

    def __init__(self, db: Database, **kwargs: Any) -> None:
        self.db = db
        self.inner = Ledger(db, **kwargs)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in _MUTATING:
            return target

        def checked(*args: Any, **kwargs: Any) -> Any:
            before = snapshot(self.db)
            try:
                result = target(*args, **kwargs)
            except Rejected:
                assert snapshot(self.db) == before, f"rejected {name} changed the database"
                assert_invariants(self.db)
                raise
            assert_invariants(self.db)
            return result

        return checked
