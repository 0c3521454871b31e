"""A transaction's own points, signed by its direction (what the member timeline shows as
``transaction_points``): not the member's account changes, which leave out the points
a reversal wrote off or put into debt."""

from __future__ import annotations

from datetime import timedelta

from tests.support import T0, CheckedLedger

DAY = timedelta(days=1)


def test_each_kind_is_signed_by_its_direction(ledger: CheckedLedger) -> None:
    held = ledger.earn("shop", "alice", "points", 80, key="e1", at=T0,
                       pending_until=T0 + 14 * DAY)  # fmt: skip
    released = ledger.release("shop", held.transaction_id, key="r1", at=T0 + DAY)
    earned = ledger.earn("shop", "alice", "points", 800, key="e2", at=T0 + DAY)
    spent = ledger.spend("shop", "alice", "points", 850, key="s1", at=T0 + 2 * DAY)
    written = ledger.reverse("shop", earned.transaction_id, key="x1", at=T0 + 3 * DAY,
                             shortfall="within_balance")  # fmt: skip
    given = ledger.adjust("shop", "alice", "points", 40, key="a1", at=T0 + 4 * DAY,
                          reason="goodwill", actor="ops")  # fmt: skip
    taken = ledger.adjust("shop", "alice", "points", -10, key="a2", at=T0 + 4 * DAY,
                          reason="correction", actor="ops")  # fmt: skip
    ids = [r.transaction_id for r in (held, released, earned, spent, written, given, taken)]
    assert ledger.signed_points("shop", ids) == dict(
        zip(ids, [80, 80, 800, -850, -800, 40, -10], strict=True)
    )
    # the reversal took 30 from the member and wrote 770 off: its account change is -30
    entry = next(h for h in ledger.history("shop", "alice") if h.kind == "reverse")
    assert (entry.available_change, entry.debt_change, written.written_off) == (-30, 0, 770)
    assert ledger.signed_points("elsewhere", ids) == {}
    assert ledger.signed_points("shop", []) == {}
