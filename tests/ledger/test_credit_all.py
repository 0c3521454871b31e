"""A credit for many members (``credit_all``, behind the API's bulk adjustment and
``ledger credit-all``): chunks of members per transaction, each member under its own
key. A stop mid-chunk leaves the chunks before it written and that chunk not at all, so
a retry with the same keys credits every member exactly once; a member refused (unknown)
is refused alone; what is wrong whatever the member is refused whole, nothing
written. On a SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected
from fidelite.ledger.credits import credit_all
from tests.support import CheckedLedger, snapshot

MEMBERS = [f"m{i:03d}" for i in range(23)]


class Stop(Exception):
    """The process stopping in the middle of a chunk."""


@pytest.fixture
def books(ledger: CheckedLedger) -> CheckedLedger:
    for m in MEMBERS:
        ledger.create_member("shop", m)
    return ledger


def balances(books: CheckedLedger) -> dict[str, int]:
    with books.db.read() as conn:
        rows = conn.execute(text(
            "SELECT m.ref, a.balance FROM accounts a JOIN members m ON m.id = a.member_id "
            "WHERE a.kind = 'available' AND a.currency = 'points'")).all()  # fmt: skip
    return {str(r): int(b) for r, b in rows if int(b)}


def credits(books: CheckedLedger) -> int:
    with books.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM ledger_transactions")).scalar_one())


def test_a_stop_mid_chunk_then_a_retry_credits_each_member_once(books: CheckedLedger) -> None:
    seen: list[str] = []

    def stopping(member: str) -> str:
        seen.append(member)
        if len(seen) == 13:  # the 3rd member of the 3rd chunk of 5
            raise Stop
        return f"gw:{member}"

    with pytest.raises(Stop):
        credit_all(books.inner, "shop", MEMBERS, "points", 25, key=stopping,
                   reason="outage", actor="ops", chunk=5)  # fmt: skip
    assert balances(books) == {m: 25 for m in MEMBERS[:10]}  # two whole chunks, no more
    done = credit_all(books.inner, "shop", MEMBERS, "points", 25, key=lambda m: f"gw:{m}",
                      reason="outage", actor="ops", chunk=5)  # fmt: skip
    assert [c.member for c in done] == MEMBERS
    assert [c.receipt.replayed for c in done if c.receipt] == [True] * 10 + [False] * 13
    assert balances(books) == {m: 25 for m in MEMBERS}
    assert credits(books) == 23
    again = credit_all(books.inner, "shop", MEMBERS, "points", 25, key=lambda m: f"gw:{m}",
                       reason="outage", actor="ops", chunk=7)  # fmt: skip
    assert all(c.receipt is not None and c.receipt.replayed for c in again)
    assert credits(books) == 23


def test_a_refused_member_is_refused_alone(books: CheckedLedger) -> None:
    listed = ["m000", "nobody", "m001"]
    done = credit_all(books.inner, "shop", listed, "points", 10, key=lambda m: f"k:{m}",
                      reason="outage", actor="ops", chunk=2)  # fmt: skip
    assert [(c.member, c.receipt is not None) for c in done] == [
        ("m000", True), ("nobody", False), ("m001", True)]  # fmt: skip
    refusal = done[1].refusal
    assert refusal is not None and refusal.code.value == "unknown_member"
    assert balances(books) == {"m000": 10, "m001": 10}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"points": 0}, "points"),
        ({"reason": "  "}, "reason"),
        ({"members": ["m000", "m001", "m000"]}, "members"),
        ({"expires_at": "past"}, "expires_at"),
    ],
)
def test_what_is_wrong_for_all_is_refused_whole(
    books: CheckedLedger, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"members": MEMBERS, "points": 5, "reason": "outage"}
    args.update(kwargs)
    if args.get("expires_at") == "past":
        args["expires_at"] = books.now()
    before = snapshot(books.db)
    with pytest.raises(Rejected) as refused:
        credit_all(books.inner, "shop", args.pop("members"), "points", args.pop("points"),  # type: ignore[arg-type]
                   key=lambda m: f"k:{m}", actor="ops", **args)  # type: ignore[arg-type]  # fmt: skip
    assert (refused.value.code.value, refused.value.field) == ("invalid_request", field)
    assert snapshot(books.db) == before
