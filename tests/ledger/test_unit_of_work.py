"""Ledger operations inside a caller's transaction (``conn=``)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected, RejectionCode, assert_invariants
from tests.support import T0, CheckedLedger


def _notes(ledger: CheckedLedger) -> list[str]:
    with ledger.db.read() as conn:
        return list(conn.execute(text("SELECT ref FROM members ORDER BY id")).scalars())


def test_posting_commits_with_the_callers_writes(ledger: CheckedLedger) -> None:
    with ledger.db.write() as conn:
        conn.execute(
            text("INSERT INTO members (program_id, ref, status, created_at) "
                 "VALUES ('shop', 'carol', 'active', '2026-01-01 00:00:00')")
        )  # fmt: skip
        r = ledger.inner.earn("shop", "carol", "points", 40, key="e1", at=T0, conn=conn)
    assert r.available_after == 40
    assert ledger.balance("shop", "carol", "points", as_of=T0).available == 40
    assert_invariants(ledger.db)


def test_caller_rollback_undoes_the_posting(ledger: CheckedLedger) -> None:
    with pytest.raises(RuntimeError), ledger.db.write() as conn:
        ledger.inner.earn("shop", "alice", "points", 40, key="e1", at=T0, conn=conn)
        raise RuntimeError("the caller's own write failed")
    assert ledger.balance("shop", "alice", "points", as_of=T0).available == 0
    assert ledger.history("shop", "alice") == []
    again = ledger.earn("shop", "alice", "points", 40, key="e1", at=T0)
    assert again.replayed is False  # the key was not used up by the rolled-back attempt


def test_rejection_inside_the_callers_transaction_keeps_it_usable(ledger: CheckedLedger) -> None:
    with ledger.db.write() as conn:
        ledger.inner.earn("shop", "alice", "points", 10, key="e1", at=T0, conn=conn)
        with pytest.raises(Rejected) as exc:
            ledger.inner.spend("shop", "alice", "points", 11, key="s1", at=T0, conn=conn)
        assert exc.value.code is RejectionCode.INSUFFICIENT_POINTS
        ledger.inner.spend("shop", "alice", "points", 4, key="s2", at=T0, conn=conn)
    assert ledger.balance("shop", "alice", "points", as_of=T0).available == 6
    assert [h.kind for h in ledger.history("shop", "alice")] == ["spend", "earn"]
    assert_invariants(ledger.db)


def test_points_already_spent_inside_a_transaction_undoes_the_reversal_count(
    ledger: CheckedLedger,
) -> None:
    e = ledger.earn("shop", "alice", "points", 10, key="e1", at=T0)
    ledger.spend("shop", "alice", "points", 10, key="s1", at=T0)
    with ledger.db.write() as conn:
        with pytest.raises(Rejected) as exc:
            ledger.inner.reverse("shop", e.transaction_id, key="r1", conn=conn)
        assert exc.value.code is RejectionCode.POINTS_ALREADY_SPENT
    assert ledger.history("shop", "alice")[-1].reversed_points == 0
    assert_invariants(ledger.db)


def test_retry_inside_a_transaction_replays(ledger: CheckedLedger) -> None:
    first = ledger.earn("shop", "alice", "points", 10, key="e1", at=T0)
    with ledger.db.write() as conn:
        again = ledger.inner.earn("shop", "alice", "points", 10, key="e1", at=T0, conn=conn)
    assert again == first and again.replayed
    assert _notes(ledger) == ["alice", "bob"]
