"""``ledger check`` finds books broken in ways its first ten rules let pass: a
transaction's points that are not what its postings move, a lot's points that are not
what its earn put in it, a posting naming another member's lot, a pending lot without
the end of its hold or held past its expiry date, a reversal or a debit dated before
what it reverses or draws, a repeated idempotency key. Each violation's rows have named
fields and members by reference. The
books are written by the ledger, then broken by hand (the database lets lots and new
rows through; its triggers refuse changes to postings and transactions). On a SQLite
file and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.ledger import Ledger, check_invariants
from fidelite.ledger.invariants import Violation, find_violations
from fidelite.store import Database

T = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def books(db: Database) -> Ledger:
    ledger = Ledger(db)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "alice")
    ledger.create_member("shop", "bob")
    ledger.earn("shop", "alice", "points", 100, key="e1", at=T)
    ledger.earn("shop", "bob", "points", 40, key="e2", at=T,
                pending_until=datetime(2026, 4, 1, tzinfo=UTC),
                expires_at=datetime(2027, 3, 1, tzinfo=UTC))  # fmt: skip
    assert check_invariants(db) == []
    return ledger


def sql(db: Database, statement: str, **params: Any) -> None:
    with db.write() as conn:
        conn.execute(text(statement), params)


def scalar(db: Database, statement: str, **params: Any) -> Any:
    with db.read() as conn:
        return conn.execute(text(statement), params).scalar_one()


def rules(db: Database) -> dict[str, Violation]:
    return {v.rule: v for v in find_violations(db, "shop")}


def lot_of(db: Database, member: str) -> int:
    return int(scalar(db, "SELECT l.id FROM lots l JOIN members m ON m.id = l.member_id "
                          "WHERE m.ref = :r", r=member))  # fmt: skip


def account(db: Database, member: str, kind: str) -> int:
    return int(scalar(db, "SELECT a.id FROM accounts a JOIN members m ON m.id = a.member_id "
                          "WHERE m.ref = :r AND a.kind = :k", r=member, k=kind))  # fmt: skip


def post(db: Database, *, points: int, postings: list[tuple[int, int | None, int]],
         at: datetime = T, reverses: int | None = None, kind: str = "adjust",
         member: str = "alice", key: str = "forged") -> int:  # fmt: skip
    """Write a transaction and its postings by hand, as a tampered database would hold."""
    tid = 9000 + len(key)
    member_id = scalar(db, "SELECT id FROM members WHERE ref = :r", r=member)
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_transactions (id, program_id, idempotency_key, request_hash,"
                " kind, member_id, currency, points, reversed_points, reverses_id, reason,"
                " occurred_at, recorded_at, result) VALUES (:id, 'shop', :k, 'x', :kind, :m,"
                " 'points', :pts, 0, :rev, 'forged', :at, :at, '{}')"
            ),
            {"id": tid, "k": key, "kind": kind, "m": member_id, "pts": points, "rev": reverses,
             "at": T if at is None else at.replace(tzinfo=None)},
        )  # fmt: skip
        for n, (account_id, lot_id, pts) in enumerate(postings):
            conn.execute(
                text("INSERT INTO postings (id, transaction_id, account_id, lot_id, points) "
                     "VALUES (:id, :t, :a, :l, :p)"),
                {"id": tid * 10 + n, "t": tid, "a": account_id, "l": lot_id, "p": pts},
            )  # fmt: skip
    return tid


def test_sound_books_pass(books: Ledger) -> None:
    assert find_violations(books.db, "shop") == []


def test_a_lots_points_not_what_its_earn_put_in(books: Ledger) -> None:
    lot = lot_of(books.db, "alice")
    sql(books.db, "UPDATE lots SET points = 150 WHERE id = :l", l=lot)
    found = rules(books.db)
    assert list(found) == ["a lot's points equal what its earn (or credit) put in it"]
    (violation,) = found.values()
    assert violation.count == 1
    assert violation.sample == [{"lot": lot, "member": "alice", "transaction": 1, "points": 150,
                                 "credited": 100}]  # fmt: skip
    assert violation.message() == (
        "a lot's points equal what its earn (or credit) put in it: 1 violation(s), e.g. "
        f"lot={lot} member=alice transaction=1 points=150 credited=100"
    )


def test_a_pending_lot_without_its_hold_end_or_held_past_its_expiry(books: Ledger) -> None:
    lot = lot_of(books.db, "bob")
    sql(books.db, "UPDATE lots SET pending_until = NULL WHERE id = :l", l=lot)
    assert list(rules(books.db)) == ["a pending lot has the end of its hold (pending_until)"]
    assert rules(books.db)["a pending lot has the end of its hold (pending_until)"].sample == [
        {"lot": lot, "member": "bob", "remaining": 40}
    ]
    sql(books.db, "UPDATE lots SET pending_until = :u WHERE id = :l", l=lot,
        u=datetime(2027, 6, 1))  # fmt: skip
    rule = "a lot's hold does not end after its expiry date (pending_until <= expires_at)"
    assert list(rules(books.db)) == [rule]
    (row,) = rules(books.db)[rule].sample
    assert (row["lot"], row["member"]) == (lot, "bob")
    assert str(row["pending_until"]).startswith("2027-06-01")
    assert str(row["expires_at"]).startswith("2027-03-01")


def test_a_transactions_points_not_what_its_postings_move(books: Ledger) -> None:
    lot = lot_of(books.db, "alice")
    adjustment = scalar(books.db, "SELECT id FROM accounts WHERE member_id IS NULL "
                                  "AND kind = 'adjustment'")  # fmt: skip
    sql(books.db, "UPDATE lots SET points = 105, remaining = 105 WHERE id = :l", l=lot)
    sql(books.db, "UPDATE accounts SET balance = 105 WHERE id = :a",
        a=account(books.db, "alice", "available"))  # fmt: skip
    tid = post(
        books.db,
        points=50,
        postings=[(adjustment, None, -5), (account(books.db, "alice", "available"), lot, 5)],
    )
    found = rules(books.db)
    rule = "a transaction's points equal the points it moves (the sum of its positive postings)"
    assert found[rule].sample == [{"transaction": tid, "member": "alice", "kind": "adjust",
                                   "points": 50, "moved": 5}]  # fmt: skip


def test_a_posting_naming_another_members_lot(books: Ledger) -> None:
    bob_lot = lot_of(books.db, "bob")
    adjustment = scalar(books.db, "SELECT id FROM accounts WHERE member_id IS NULL "
                                  "AND kind = 'adjustment'")  # fmt: skip
    tid = post(
        books.db,
        points=5,
        postings=[(adjustment, None, -5), (account(books.db, "alice", "available"), bob_lot, 5)],
    )
    rule = "a posting's lot belongs to the posting's account (its member, program and currency)"
    found = rules(books.db)
    assert found[rule].sample == [
        {"posting": tid * 10 + 1, "transaction": tid, "lot": bob_lot, "account_member": "alice",
         "lot_member": "bob", "account_currency": "points", "lot_currency": "points"}
    ]  # fmt: skip


def test_a_reversal_and_a_debit_dated_before_their_original(books: Ledger) -> None:
    lot = lot_of(books.db, "alice")
    issued = scalar(books.db, "SELECT id FROM accounts WHERE member_id IS NULL "
                              "AND kind = 'issued'")  # fmt: skip
    early = datetime(2026, 1, 1, tzinfo=UTC)
    tid = post(
        books.db,
        points=5,
        kind="reverse",
        reverses=1,
        at=early,
        postings=[(issued, None, 5), (account(books.db, "alice", "available"), lot, -5)],
    )
    found = rules(books.db)
    reversal = found["a reversal is not dated before the transaction it reverses"]
    assert [(r["transaction"], r["member"], r["reverses"]) for r in reversal.sample] == [
        (tid, "alice", 1)
    ]
    drawn = found["no move takes points from a lot before the lot was earned "
                  "(a release or debit dated before the earn)"]  # fmt: skip
    assert [(r["transaction"], r["kind"], r["lot"]) for r in drawn.sample] == [
        (tid, "reverse", lot)
    ]


def test_a_repeated_idempotency_key(books: Ledger) -> None:
    """The UNIQUE constraint refuses a repeated key; a database restored without it
    (here: the constraint dropped, PostgreSQL only) is caught by the check."""
    if books.db.url.startswith("sqlite"):
        pytest.skip("SQLite cannot drop the constraint: the key cannot repeat")
    sql(books.db, "ALTER TABLE ledger_transactions DROP CONSTRAINT uq_ledger_transactions_key")
    try:
        sql(books.db, "INSERT INTO ledger_transactions (id, program_id, idempotency_key, "
                      "request_hash, kind, member_id, currency, points, reversed_points, reason, "
                      "occurred_at, recorded_at, result, detail, source, actor, reverses_id) "
                      "SELECT 9999, program_id, idempotency_key, request_hash, kind, member_id, "
                      "currency, points, reversed_points, reason, occurred_at, recorded_at, "
                      "result, detail, source, actor, reverses_id FROM ledger_transactions "
                      "WHERE idempotency_key = 'e1'")  # fmt: skip
        found = rules(books.db)
        assert found["an idempotency key is used once per program"].sample == [
            {"program": "shop", "key": "e1", "transactions": 2}
        ]
    finally:  # the constraint back for the next tests (the rows cannot be deleted)
        sql(books.db, "TRUNCATE ledger_transactions CASCADE")
        sql(books.db, "ALTER TABLE ledger_transactions ADD CONSTRAINT "
            "uq_ledger_transactions_key UNIQUE (program_id, idempotency_key)")  # fmt: skip
