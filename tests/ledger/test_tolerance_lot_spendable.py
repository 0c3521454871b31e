"""A lot dated a few minutes ahead of the ledger's clock (a purchase within the
program's future tolerance: a till clock running fast) is held from when it was
recorded: a spend dated now draws it, a spend dated before its recording does not, and
``ledger check`` finds the books sound. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fidelite.ledger import Rejected, RejectionCode
from fidelite.ledger.invariants import find_violations
from fidelite.store import Database
from tests.support import CheckedLedger, snapshot

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clocked(db: Database) -> CheckedLedger:
    ledger = CheckedLedger(db, clock=lambda: NOW)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "alice")
    return ledger


def test_a_spend_dated_now_draws_a_lot_dated_minutes_ahead(clocked: CheckedLedger) -> None:
    clocked.earn("shop", "alice", "points", 150, key="e1", at=NOW + timedelta(minutes=3))
    assert clocked.balance("shop", "alice", "points").available == 150
    spent = clocked.spend("shop", "alice", "points", 100, key="s1", at=NOW)
    assert spent.points == 100
    assert clocked.balance("shop", "alice", "points").available == 50
    debit = clocked.adjust("shop", "alice", "points", -50, key="a1", reason="fix", actor="ops")
    assert debit.points == 50
    assert clocked.balance("shop", "alice", "points").available == 0
    assert find_violations(clocked.db, "shop") == []


def test_a_spend_dated_before_the_lot_was_recorded_does_not_draw_it(
    clocked: CheckedLedger,
) -> None:
    clocked.earn("shop", "alice", "points", 150, key="e1", at=NOW + timedelta(minutes=3))
    before = snapshot(clocked.db)
    with pytest.raises(Rejected) as no:
        clocked.spend("shop", "alice", "points", 10, key="s1", at=NOW - timedelta(minutes=1))
    assert no.value.code is RejectionCode.INSUFFICIENT_POINTS
    assert no.value.detail == {"available": 0, "requested": 10}
    assert snapshot(clocked.db) == before
