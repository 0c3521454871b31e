"""Cancelling a spend whose points a refund wrote off (``within_balance``: they were
spent when the purchase was refunded) gives the member nothing back: the cancellation
restores the write-off instead, as under ``debt`` it repays the debt the refund
recorded. The member ends where they end under ``debt``. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from fidelite.ledger import Rejected
from tests.support import CheckedLedger


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T12:00:00+00:00")


def program_totals(ledger: CheckedLedger) -> dict[str, int]:
    with ledger.db.read() as conn:
        rows = conn.execute(text(
            "SELECT a.kind, COALESCE(SUM(p.points), 0) FROM accounts a "
            "LEFT JOIN postings p ON p.account_id = a.id "
            "WHERE a.member_id IS NULL AND a.program_id = 'shop' AND a.currency = 'points' "
            "GROUP BY a.kind"
        ))  # fmt: skip
        return {kind: int(points) for kind, points in rows if points}


def balance(ledger: CheckedLedger) -> tuple[int, int]:
    b = ledger.balance("shop", "alice", "points", as_of=at("12-01"))
    return b.available, b.debt


def test_a_full_refund_then_the_cancellation_leaves_the_member_at_zero(
    ledger: CheckedLedger,
) -> None:
    earn = ledger.earn("shop", "alice", "points", 100, key="e1", at=at("03-01"))
    spend = ledger.spend("shop", "alice", "points", 60, key="s1", at=at("03-02"))
    refund = ledger.reverse("shop", earn.transaction_id, key="r1", shortfall="within_balance",
                            at=at("03-03"))  # fmt: skip
    assert (refund.points, refund.written_off) == (100, 60)
    cancel = ledger.reverse("shop", spend.transaction_id, key="c1", at=at("03-04"))
    assert (cancel.points, cancel.available_after, cancel.debt_repaid) == (60, 0, 0)
    assert cancel.lot_moves == ()
    assert balance(ledger) == (0, 0)
    assert program_totals(ledger) == {}  # issued, redeemed and written off all back to 0
    entry = ledger.history("shop", "alice", limit=1)[0]
    assert entry.detail == {"written_off_restored": 60,
                            "written_off_restored_lots": {str(_lot(ledger)): 60}}  # fmt: skip
    assert entry.available_change == 0


def _lot(ledger: CheckedLedger) -> int:
    with ledger.db.read() as conn:
        return int(conn.execute(text("SELECT MIN(id) FROM lots")).scalar_one())


def test_the_outcome_is_that_of_debt(ledger: CheckedLedger) -> None:
    for member, policy in (("alice", "within_balance"), ("bob", "debt")):
        earn = ledger.earn("shop", member, "points", 100, key=f"e-{member}", at=at("03-01"))
        spend = ledger.spend("shop", member, "points", 60, key=f"s-{member}", at=at("03-02"))
        ledger.reverse("shop", earn.transaction_id, key=f"r-{member}", points=50,
                       shortfall=policy, at=at("03-03"))  # fmt: skip
        ledger.reverse("shop", spend.transaction_id, key=f"c-{member}", at=at("03-04"))
    for member in ("alice", "bob"):
        b = ledger.balance("shop", member, "points", as_of=at("12-01"))
        assert (b.available, b.debt) == (50, 0)  # the 50 points not refunded


def test_partial_cancellations_restore_the_write_off_once(ledger: CheckedLedger) -> None:
    earn = ledger.earn("shop", "alice", "points", 100, key="e1", at=at("03-01"))
    first = ledger.spend("shop", "alice", "points", 30, key="s1", at=at("03-02"))
    second = ledger.spend("shop", "alice", "points", 30, key="s2", at=at("03-02"))
    ledger.earn("shop", "alice", "points", 20, key="e2", at=at("03-02"))
    refund = ledger.reverse("shop", earn.transaction_id, key="r1", shortfall="within_balance",
                            at=at("03-03"))  # fmt: skip
    assert (refund.shortfall, refund.written_off) == (60, 40)  # 20 from the other lot
    assert balance(ledger) == (0, 0)
    ledger.reverse("shop", first.transaction_id, key="c1", points=10, at=at("03-04"))
    ledger.reverse("shop", first.transaction_id, key="c2", at=at("03-04"))
    assert balance(ledger) == (0, 0)
    assert program_totals(ledger)["written_off"] == -10
    ledger.reverse("shop", second.transaction_id, key="c3", at=at("03-04"))
    # 40 written off restored, the 20 the member paid from the other lot come back
    assert balance(ledger) == (20, 0)
    assert "written_off" not in program_totals(ledger)


def lots_left(ledger: CheckedLedger, member: str) -> list[int]:
    """The member's lots' remaining points, in the order they were earned."""
    with ledger.db.read() as conn:
        return [int(n) for n in conn.execute(text(
            "SELECT l.remaining FROM lots l JOIN members m ON m.id = l.member_id "
            "WHERE m.ref = :m ORDER BY l.id"
        ), {"m": member}).scalars()]  # fmt: skip


def test_the_points_a_refund_took_in_place_restore_the_other_purchase_s_write_off(
    ledger: CheckedLedger,
) -> None:
    # The refund of p1 takes 150 of p2's points in place of its spent ones; p2's own
    # refund then finds its lot empty and writes off 100. Cancelling the redemption
    # restores both write-offs: the member keeps what is left of p2 (100), as under debt.
    for member, policy in (("alice", "within_balance"), ("bob", "debt")):
        p1 = ledger.earn("shop", member, "points", 1000, key=f"p1-{member}", at=at("03-01"))
        p2 = ledger.earn("shop", member, "points", 200, key=f"p2-{member}", at=at("03-02"))
        spend = ledger.spend("shop", member, "points", 1050, key=f"s-{member}", at=at("03-03"))
        r1 = ledger.reverse("shop", p1.transaction_id, key=f"r1-{member}", shortfall=policy,
                            at=at("03-04"))  # fmt: skip
        r2 = ledger.reverse("shop", p2.transaction_id, key=f"r2-{member}", points=100,
                            shortfall=policy, at=at("03-04"))  # fmt: skip
        assert (r1.shortfall, r1.written_off + r1.debt_added) == (1000, 850)
        assert (r2.shortfall, r2.written_off + r2.debt_added) == (100, 100)
        cancel = ledger.reverse("shop", spend.transaction_id, key=f"c-{member}",
                                at=at("03-05"))  # fmt: skip
        assert cancel.available_after == 100
        b = ledger.balance("shop", member, "points", as_of=at("12-01"))
        assert (b.available, b.debt) == (100, 0)
        assert lots_left(ledger, member) == [0, 100]  # what is left of p2, in p2's lot
    assert "written_off" not in program_totals(ledger)
    entry = ledger.history("shop", "alice", limit=1)[0]
    first = _lot(ledger)  # alice's p1; p2 is the next lot
    assert entry.detail == {
        "written_off_restored": 950,
        "written_off_restored_lots": {str(first): 850, str(first + 1): 100},
        "substitutes_returned": {str(first): {str(first + 1): 150}},
    }


def test_partial_cancellations_give_back_what_the_whole_one_does(ledger: CheckedLedger) -> None:
    p1 = ledger.earn("shop", "alice", "points", 1000, key="p1", at=at("03-01"))
    p2 = ledger.earn("shop", "alice", "points", 200, key="p2", at=at("03-02"))
    spend = ledger.spend("shop", "alice", "points", 1050, key="s1", at=at("03-03"))
    ledger.reverse("shop", p1.transaction_id, key="r1", shortfall="within_balance",
                   at=at("03-04"))  # fmt: skip
    ledger.reverse("shop", p2.transaction_id, key="r2", points=100,
                   shortfall="within_balance", at=at("03-04"))  # fmt: skip
    assert program_totals(ledger)["written_off"] == -950
    for key, points, written_off, available in (
        ("c1", 600, -350, 0), ("c2", 300, -50, 0), ("c3", 149, 0, 99), ("c4", 1, 0, 100)
    ):  # fmt: skip
        ledger.reverse("shop", spend.transaction_id, key=key, points=points, at=at("03-05"))
        assert program_totals(ledger).get("written_off", 0) == written_off
        assert balance(ledger) == (available, 0)
    assert lots_left(ledger, "alice") == [0, 100]


def test_points_taken_in_place_go_back_to_their_lot(ledger: CheckedLedger) -> None:
    p1 = ledger.earn("shop", "alice", "points", 1000, key="p1", at=at("03-01"))
    ledger.earn("shop", "alice", "points", 200, key="p2", at=at("03-02"))
    spend = ledger.spend("shop", "alice", "points", 1000, key="s1", at=at("03-03"))
    refund = ledger.reverse("shop", p1.transaction_id, key="r1", shortfall="within_balance",
                            at=at("03-04"))  # fmt: skip
    assert (refund.shortfall, refund.written_off) == (1000, 800)  # 200 from p2's lot
    ledger.reverse("shop", spend.transaction_id, key="c1", at=at("03-05"))
    assert balance(ledger) == (200, 0)
    assert lots_left(ledger, "alice") == [0, 200]  # p2's points, not in refunded p1's lot
    assert "written_off" not in program_totals(ledger)


def test_points_taken_in_place_of_points_taken_in_place(ledger: CheckedLedger) -> None:
    # p0's refund takes p1's points, p1's refund takes p2's, p2's refund writes off:
    # the cancellation follows the chain and restores every write-off.
    p0 = ledger.earn("shop", "alice", "points", 100, key="p0", at=at("03-01"))
    p1 = ledger.earn("shop", "alice", "points", 50, key="p1", at=at("03-01"))
    spend = ledger.spend("shop", "alice", "points", 100, key="s1", at=at("03-02"))
    refunds = [ledger.reverse("shop", p0.transaction_id, key="r0", shortfall="within_balance",
                              at=at("03-03"))]  # fmt: skip
    p2 = ledger.earn("shop", "alice", "points", 30, key="p2", at=at("03-04"))
    for key, earn in (("r1", p1), ("r2", p2)):
        refunds.append(ledger.reverse("shop", earn.transaction_id, key=key,
                                      shortfall="within_balance", at=at("03-05")))  # fmt: skip
    assert [(r.shortfall, r.written_off) for r in refunds] == [(100, 50), (50, 20), (30, 30)]
    assert balance(ledger) == (0, 0)
    ledger.reverse("shop", spend.transaction_id, key="c1", at=at("03-06"))
    assert balance(ledger) == (0, 0)  # every purchase refunded, the redemption cancelled
    assert "written_off" not in program_totals(ledger)


def test_a_forgiven_write_off_stays_forgiven(ledger: CheckedLedger) -> None:
    # Cancelling a later redemption of other points gives those back: the write-off of
    # the earlier refund is not restored from them.
    p1 = ledger.earn("shop", "alice", "points", 1000, key="p1", at=at("03-01"))
    ledger.spend("shop", "alice", "points", 1000, key="s1", at=at("03-02"))
    refund = ledger.reverse("shop", p1.transaction_id, key="r1", shortfall="within_balance",
                            at=at("03-03"))  # fmt: skip
    assert refund.written_off == 1000
    ledger.earn("shop", "alice", "points", 500, key="p2", at=at("03-04"))
    second = ledger.spend("shop", "alice", "points", 500, key="s2", at=at("03-05"))
    cancel = ledger.reverse("shop", second.transaction_id, key="c2", at=at("03-06"))
    assert (cancel.points, cancel.available_after) == (500, 500)
    assert balance(ledger) == (500, 0)
    assert program_totals(ledger)["written_off"] == -1000


_members = itertools.count()
_step = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 60), st.just(0)),
    st.tuples(st.just("spend"), st.integers(1, 90), st.just(0)),
    st.tuples(st.just("refund"), st.integers(1, 60), st.integers(0, 7)),  # points, which
    st.tuples(st.just("cancel"), st.integers(1, 90), st.integers(0, 7)),
)


def _play(
    ledger: CheckedLedger, member: str, policy: str, steps: list[tuple[str, int, int]]
) -> int:
    """Run ``steps`` for a new member under the refund ``policy``, then cancel what is
    left of every spend; return what they earned net of refunds."""
    ledger.create_member("shop", member)
    earns: list[list[int]] = []  # [transaction id, points not refunded]
    spends: list[list[int]] = []  # [transaction id, points not cancelled]
    when = at("03-01")
    for n, (op, points, which) in enumerate(steps):
        when += timedelta(minutes=1)
        key = f"{member}-{n}"
        if op == "earn":
            e = ledger.earn("shop", member, "points", points, key=key, at=when)
            earns.append([e.transaction_id, points])
        elif op == "spend":
            try:
                s = ledger.spend("shop", member, "points", points, key=key, at=when)
            except Rejected:
                continue
            spends.append([s.transaction_id, points])
        else:
            open_ = [t for t in (earns if op == "refund" else spends) if t[1]]
            if not open_:
                continue
            t = open_[which % len(open_)]
            take = min(points, t[1])
            ledger.reverse("shop", t[0], key=key, points=take, at=when,
                           **({"shortfall": policy} if op == "refund" else {}))  # fmt: skip
            t[1] -= take
    for n, (txn, left) in enumerate(spends):
        if left:
            when += timedelta(minutes=1)
            ledger.reverse("shop", txn, key=f"{member}-end-{n}", at=when)
    return sum(left for _, left in earns)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_step, max_size=14))
@example(steps=[("earn", 50, 0), ("earn", 10, 0), ("spend", 55, 0), ("refund", 50, 0),
                ("refund", 10, 1)])  # fmt: skip
def test_once_every_spend_is_cancelled_the_member_holds_what_debt_leaves(
    ledger: CheckedLedger, steps: list[tuple[str, int, int]]
) -> None:
    """Whatever refunds wrote off, once every spend is cancelled the member holds what
    their purchases left them, as under ``debt`` (whose debt the cancellations repaid)."""
    n = next(_members)
    outcomes = []
    for policy in ("within_balance", "debt"):
        net = _play(ledger, f"{policy}-{n}", policy, steps)
        b = ledger.balance("shop", f"{policy}-{n}", "points", as_of=at("12-01"))
        outcomes.append((b.available, b.debt))
    assert outcomes == [(net, 0), (net, 0)]
