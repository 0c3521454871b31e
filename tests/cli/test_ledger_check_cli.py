"""``fidelite ledger check``: an unknown ``--program`` is refused (``unknown_program``)
instead of reporting its empty books sound; a violation's sample rows name their fields
and members by reference, with plain numbers (also on PostgreSQL, whose sums are
decimals), and ``-f json`` gives them as objects. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from fidelite.ledger import Ledger, Rejected, RejectionCode, check_invariants
from fidelite.store import Database
from tests.cli.support import as_json, fidelite
from tests.support import snapshot


@pytest.fixture
def books(db: Database) -> Ledger:
    ledger = Ledger(db)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "CARD-0001")
    ledger.earn("shop", "CARD-0001", "points", 100, key="e1",
                at=datetime(2026, 3, 1, 12, tzinfo=UTC))  # fmt: skip
    return ledger


def test_an_unknown_program_is_refused(books: Ledger) -> None:
    before = snapshot(books.db)
    with pytest.raises(Rejected) as caught:
        check_invariants(books.db, "nosuch")
    assert (caught.value.code, caught.value.message) == (
        RejectionCode.UNKNOWN_PROGRAM, "no program 'nosuch'"
    )  # fmt: skip
    answer = fidelite("ledger", "check", "-p", "nosuch", "-f", "json", db=books.db.url, ok=False)
    assert answer.returncode == 1
    assert as_json(answer) == {"error": {"code": "unknown_program", "field": "program_id",
                                         "message": "no program 'nosuch'"}}  # fmt: skip
    shown = fidelite("ledger", "check", "-p", "nosuch", db=books.db.url, ok=False)
    assert shown.returncode == 1
    assert "error [unknown_program] no program 'nosuch'" in shown.stderr
    assert "books balance" not in shown.stdout
    assert snapshot(books.db) == before
    assert as_json(fidelite("ledger", "check", "-p", "shop", "-f", "json", db=books.db.url)) == {
        "ok": True, "violations": []
    }  # fmt: skip


def test_violations_name_their_fields_and_members(books: Ledger) -> None:
    with books.db.write() as conn:  # a cached balance off by 10
        conn.execute(text("UPDATE accounts SET balance = 90 WHERE kind = 'available' "
                          "AND member_id IS NOT NULL"))  # fmt: skip
    shown = fidelite("ledger", "check", "-p", "shop", db=books.db.url, ok=False)
    assert shown.returncode == 1
    lines = " ".join(shown.stdout.split())
    assert (
        "✗ a member's cached balance equals the sum of its postings: 1 violation(s), e.g. "
        "member=CARD-0001 currency=points account=available balance=90 postings=100"
    ) in lines
    assert ("✗ a member's available/pending balance equals the remainders of those lots: "
            "1 violation(s), e.g. member=CARD-0001 currency=points account=available "
            "balance=90 lots=100") in lines  # fmt: skip
    assert "Decimal" not in lines
    answer = as_json(fidelite("ledger", "check", "-f", "json", db=books.db.url, ok=False))
    assert answer["ok"] is False
    assert [v["rule"] for v in answer["violations"]] == [
        "a member's cached balance equals the sum of its postings",
        "a member's available/pending balance equals the remainders of those lots",
    ]
    first = answer["violations"][0]
    assert first["count"] == 1
    assert first["sample"] == [
        {"member": "CARD-0001", "currency": "points", "account": "available", "balance": 90,
         "postings": 100}
    ]  # fmt: skip
    assert first["message"] == (
        "a member's cached balance equals the sum of its postings: 1 violation(s), e.g. "
        "member=CARD-0001 currency=points account=available balance=90 postings=100"
    )
    assert answer["violations"][1]["sample"] == [{"member": "CARD-0001", "currency": "points",
                                                  "account": "available", "balance": 90,
                                                  "lots": 100}]  # fmt: skip
