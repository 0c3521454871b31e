"""The expiry job expires the points of holds that ended by its ``as_of`` whether the
release job has recorded their release yet or not: the two daily jobs give the same
books in either order. On a SQLite file and on PostgreSQL; dated lots (expiry after
earning) and the inactivity policy.

The job writes the release the release job would write at ``as_of`` (same key, same
time, debt repaid first), then the expiry, in the member's transaction: every point
goes pending → available → expired once, and the release job then finds the lot
released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.ledger import assert_invariants
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from tests.conftest import BACKENDS, make_database
from tests.support import T0, CheckedLedger

DAY = timedelta(days=1)
HOLD_END = T0 + 14 * DAY
AS_OF = T0 + 40 * DAY  # 2026-02-10
MONTHLY = ExpiryPolicy(mode="inactivity", months=1)

Fresh = Callable[[], CheckedLedger]


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fresh]:
    """Make a new empty ledger (program ``shop``, currencies ``points`` and ``miles``,
    members ``alice`` and ``bob``) on this test's backend; on PostgreSQL a new one
    empties the previous one's database (read what you need from it first)."""
    made: list[Database] = []

    def make() -> CheckedLedger:
        place = tmp_path / f"db{len(made)}"
        place.mkdir()
        db = make_database(request.param, request, place)
        made.append(db)
        ledger = CheckedLedger(db)
        ledger.open_program("shop", ["points", "miles"])
        ledger.create_member("shop", "alice")
        ledger.create_member("shop", "bob")
        return ledger

    yield make
    for db in made:
        db.dispose()


def books(ledger: CheckedLedger) -> dict[str, Any]:
    """The books without ids and recording times: each entry (member, kind, key, points,
    time, currency, and its postings by account and lot), in no order; balances; lots."""
    with ledger.db.read() as conn:
        txns = conn.execute(
            text(
                "SELECT t.id, m.ref, t.kind, t.idempotency_key, t.points, t.occurred_at, "
                "t.currency FROM ledger_transactions t "
                "LEFT JOIN members m ON m.id = t.member_id"
            )
        ).all()
        postings = conn.execute(
            text(
                "SELECT p.transaction_id, a.kind, m.ref, l.earn_transaction_id, p.points "
                "FROM postings p JOIN accounts a ON a.id = p.account_id "
                "LEFT JOIN members m ON m.id = a.member_id "
                "LEFT JOIN lots l ON l.id = p.lot_id"
            )
        ).all()
        keys = {int(r[0]): str(r[3]) for r in txns}
        moved: dict[int, list[tuple[Any, ...]]] = {}
        for txn, kind, ref, earn, points in postings:
            lot = None if earn is None else keys[int(earn)]
            moved.setdefault(int(txn), []).append((kind, ref, lot, int(points)))
        entries = sorted(
            (
                str(ref),
                str(kind),
                str(key),
                int(points),
                _utc(at),
                str(currency),
                tuple(sorted(moved.get(int(txn_id), []), key=repr)),
            )
            for txn_id, ref, kind, key, points, at, currency in txns
        )
        accounts = sorted(
            (str(r[0]), str(r[1]), str(r[2]), int(r[3]))
            for r in conn.execute(
                text(
                    "SELECT COALESCE(m.ref, '-'), a.currency, a.kind, "
                    "(SELECT COALESCE(SUM(p.points), 0) FROM postings p "
                    "WHERE p.account_id = a.id) FROM accounts a "
                    "LEFT JOIN members m ON m.id = a.member_id"
                )
            ).all()
        )
        lots = sorted(
            (keys[int(r[0])], int(r[1]), str(r[2]))
            for r in conn.execute(
                text("SELECT earn_transaction_id, remaining, state FROM lots")
            ).all()
        )
    return {"entries": entries, "accounts": accounts, "lots": lots}


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=T0.tzinfo) if value.tzinfo is None else value


def member_accounts(state: dict[str, Any], ref: str, currency: str) -> dict[str, int]:
    return {kind: bal for who, cur, kind, bal in state["accounts"] if (who, cur) == (ref, currency)}


def run_jobs(
    ledger: CheckedLedger, order: str, policy: ExpiryPolicy | None = None
) -> list[tuple[str, int, dict[str, int]]]:
    """Both daily jobs at AS_OF in ``order``, the expiry twice; what each reported."""
    done = []

    def expire() -> None:
        report = ledger.expire("shop", AS_OF, policy=policy)
        done.append(("expire", report.transactions, report.points))

    def release() -> None:
        report = ledger.release_due("shop", AS_OF)
        done.append(("release", report.transactions, report.points))

    steps = [expire, expire, release] if order == "expire_first" else [release, expire, expire]
    for step in steps:
        step()
    return done


def dated_history(ledger: CheckedLedger) -> None:
    """alice: 60 owed; 100 held until HOLD_END, expiring T0+30d; 50 held until HOLD_END,
    expiring after AS_OF; 20 credited (repaying debt); 7 miles held until HOLD_END.
    bob: 40 held until T0+41d (still pending at AS_OF), expiring T0+60d."""
    first = ledger.earn("shop", "alice", "points", 60, key="a-owed", at=T0)
    ledger.spend("shop", "alice", "points", 60, key="a-spend", at=T0)
    ledger.reverse("shop", first.transaction_id, key="a-undo", shortfall="debt", at=T0 + DAY)
    ledger.earn("shop", "alice", "points", 100, key="a-held", at=T0 + DAY,
                pending_until=HOLD_END, expires_at=T0 + 30 * DAY)  # fmt: skip
    ledger.earn("shop", "alice", "points", 50, key="a-later", at=T0 + DAY,
                pending_until=HOLD_END, expires_at=T0 + 90 * DAY)  # fmt: skip
    ledger.earn("shop", "alice", "points", 20, key="a-free", at=T0 + DAY,
                expires_at=T0 + 30 * DAY)  # fmt: skip
    ledger.earn("shop", "alice", "miles", 7, key="a-miles", at=T0 + DAY, pending_until=HOLD_END)
    ledger.earn("shop", "bob", "points", 40, key="b-held", at=T0 + DAY,
                pending_until=T0 + 41 * DAY, expires_at=T0 + 60 * DAY)  # fmt: skip


@pytest.mark.parametrize("order", ["expire_first", "release_first"])
def test_dated_points_of_an_ended_hold_expire_in_either_order(fresh: Fresh, order: str) -> None:
    ledger = fresh()
    dated_history(ledger)
    before = ledger.balance("shop", "alice", "points", as_of=AS_OF)
    assert (before.available, before.pending, before.debt) == (50, 0, 0)

    reports = run_jobs(ledger, order)

    # The 20 credited repay 20 of the 60 owed (no lot), the 100 held repay the other
    # 40 on their release, and their 60 left expire.
    if order == "expire_first":
        assert reports == [
            ("expire", 1, {"points": 60}),
            ("expire", 0, {}),
            ("release", 0, {}),  # alice's holds (points and miles) released by expire
        ]
    else:
        assert reports == [
            ("release", 3, {"points": 150, "miles": 7}),
            ("expire", 1, {"points": 60}),
            ("expire", 0, {}),
        ]
    state = books(ledger)
    assert member_accounts(state, "alice", "points") == {"available": 50, "pending": 0, "debt": 0}
    assert member_accounts(state, "alice", "miles") == {"available": 7, "pending": 0, "debt": 0}
    assert member_accounts(state, "bob", "points") == {"available": 0, "pending": 40, "debt": 0}
    assert state["lots"] == sorted([
        ("a-owed", 0, "spent"), ("a-held", 0, "expired"), ("a-later", 50, "available"),
        ("a-miles", 7, "available"), ("b-held", 40, "pending"),
    ])  # fmt: skip
    kinds = [(ref, kind, points) for ref, kind, _, points, *_ in state["entries"]]
    assert kinds.count(("alice", "release", 100)) == 1
    assert kinds.count(("alice", "release", 50)) == 1
    assert kinds.count(("alice", "expire", 60)) == 1
    after = ledger.balance("shop", "alice", "points", as_of=AS_OF)
    assert (after.available, after.pending, after.debt) == (50, 0, 0)
    assert_invariants(ledger.db)


def test_dated_books_are_the_same_whichever_job_runs_first(fresh: Fresh) -> None:
    first = fresh()
    dated_history(first)
    run_jobs(first, "expire_first")
    expired_first = books(first)
    second = fresh()  # on PostgreSQL this empties the first one's database
    dated_history(second)
    run_jobs(second, "release_first")
    assert books(second) == expired_first
    releases = [e for e in expired_first["entries"] if e[1] == "release"]
    assert [(e[0], e[2], e[4]) for e in releases] == [
        ("alice", f"release:{n}", AS_OF) for n in (4, 5, 7)
    ]


def inactive_history(ledger: CheckedLedger) -> None:
    """alice: 100 held until HOLD_END earned at T0, no activity since (lapsed on
    2026-02-01 under a one-month policy). bob: 30 held until HOLD_END at T0, then
    an activity on T0+20d (deadline 2026-02-21, after AS_OF)."""
    ledger.earn("shop", "alice", "points", 100, key="a-held", at=T0, pending_until=HOLD_END)
    ledger.earn("shop", "bob", "points", 30, key="b-held", at=T0, pending_until=HOLD_END)
    ledger.earn("shop", "bob", "points", 5, key="b-later", at=T0 + 20 * DAY)


@pytest.mark.parametrize("order", ["expire_first", "release_first"])
def test_lapsed_points_of_an_ended_hold_expire_in_either_order(fresh: Fresh, order: str) -> None:
    ledger = fresh()
    inactive_history(ledger)
    before = ledger.balance("shop", "alice", "points", as_of=AS_OF, policy=MONTHLY)
    assert (before.available, before.pending) == (0, 0)  # lapsed, released or not

    reports = run_jobs(ledger, order, MONTHLY)

    if order == "expire_first":
        assert reports == [
            ("expire", 1, {"points": 100}),
            ("expire", 0, {}),
            ("release", 1, {"points": 30}),  # bob's: not lapsed, released by the job
        ]
    else:
        assert reports == [
            ("release", 2, {"points": 130}),
            ("expire", 1, {"points": 100}),
            ("expire", 0, {}),
        ]
    state = books(ledger)
    assert member_accounts(state, "alice", "points") == {"available": 0, "pending": 0, "debt": 0}
    assert member_accounts(state, "bob", "points") == {"available": 35, "pending": 0, "debt": 0}
    assert state["lots"] == sorted(
        [("a-held", 0, "expired"), ("b-held", 30, "available"), ("b-later", 5, "available")]
    )
    expiry = [e for e in state["entries"] if e[1] == "expire"]
    assert [(e[0], e[3], e[4], e[6]) for e in expiry] == [
        (
            "alice",
            100,
            AS_OF,
            (("available", "alice", "a-held", -100), ("expired", None, None, 100)),
        )
    ]
    assert_invariants(ledger.db)


def test_lapsed_books_are_the_same_whichever_job_runs_first(fresh: Fresh) -> None:
    first = fresh()
    inactive_history(first)
    run_jobs(first, "expire_first", MONTHLY)
    expired_first = books(first)
    second = fresh()
    inactive_history(second)
    run_jobs(second, "release_first", MONTHLY)
    assert books(second) == expired_first


def test_nothing_to_expire_writes_no_release(fresh: Fresh) -> None:
    """A member selected for an ended hold whose release repays all their debt has
    nothing left to expire: the job writes nothing, the release job writes the release."""
    ledger = fresh()
    first = ledger.earn("shop", "alice", "points", 60, key="a-owed", at=T0)
    ledger.spend("shop", "alice", "points", 60, key="a-spend", at=T0)
    ledger.reverse("shop", first.transaction_id, key="a-undo", shortfall="debt", at=T0 + DAY)
    ledger.earn("shop", "alice", "points", 40, key="a-held", at=T0 + DAY,
                pending_until=HOLD_END, expires_at=T0 + 30 * DAY)  # fmt: skip
    unchanged = books(ledger)
    report = ledger.expire("shop", AS_OF)
    assert (report.transactions, report.lots, report.points) == (0, 0, {})
    assert books(ledger) == unchanged
    released = ledger.release_due("shop", AS_OF)
    assert (released.transactions, released.points) == (1, {"points": 40})
    assert member_accounts(books(ledger), "alice", "points") == {
        "available": 0, "pending": 0, "debt": -20,
    }  # fmt: skip
