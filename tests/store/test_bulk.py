"""Multi-row writes of the batch path: COPY / unnest on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from fidelite.ledger import Ledger
from fidelite.processing.tables import member_states
from fidelite.store import Database
from fidelite.store.bulk import add_to_rows, insert_rows
from fidelite.store.locking import ConcurrentUpdateError

AT = datetime(2026, 11, 23, 9, tzinfo=UTC)
SIGN = "(t.kind = 'debt' AND t.balance + {d} <= 0) OR (t.kind <> 'debt' AND t.balance + {d} >= 0)"


def _accounts(db: Database) -> dict[tuple[str, str], tuple[int, int]]:
    with db.read() as conn:
        rows = conn.execute(text(
            "SELECT m.ref, a.kind, a.id, a.balance FROM accounts a "
            "JOIN members m ON m.id = a.member_id WHERE a.currency = 'points'"
        ))  # fmt: skip
        return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


@pytest.fixture
def shop(db: Database) -> Database:
    ledger = Ledger(db)
    ledger.open_program("shop", ["points"])
    for ref in ("ann", "bob"):
        ledger.create_member("shop", ref)
        ledger.earn("shop", ref, "points", 10, key=f"seed-{ref}", at=AT)
    return db


def test_increments_apply_to_every_named_row(shop: Database) -> None:
    before = _accounts(shop)
    ann, bob = before[("ann", "available")][0], before[("bob", "available")][0]
    with shop.write() as conn:
        add_to_rows(conn, "accounts", "balance", {"id": "bigint"}, [((ann,), 5), ((bob,), -3)],
                    guard=SIGN)  # fmt: skip
    after = _accounts(shop)
    assert after[("ann", "available")][1] == 15
    assert after[("bob", "available")][1] == 7


def test_a_refused_or_missing_row_raises_and_the_transaction_keeps_nothing(
    shop: Database,
) -> None:
    before = _accounts(shop)
    ann, bob = before[("ann", "available")][0], before[("bob", "available")][0]
    for changes in ([((ann,), 5), ((bob,), -11)], [((ann,), 5), ((999_999,), 1)]):
        with pytest.raises(ConcurrentUpdateError, match="1 of 2 changes refused"):  # noqa: SIM117
            with shop.write() as conn:
                add_to_rows(conn, "accounts", "balance", {"id": "bigint"}, changes, guard=SIGN)
        assert _accounts(shop) == before
    with pytest.raises(ValueError, match="one change per row"), shop.write() as conn:
        add_to_rows(conn, "accounts", "balance", {"id": "bigint"}, [((ann,), 1), ((ann,), 2)])


def test_insert_rows_keeps_json_and_times_and_refuses_naive_times(shop: Database) -> None:
    row = {"program_id": "shop", "member_ref": "cat", "tier": None, "tier_since": None,
           "segments": ["vip"], "attributes": {"city": "Lyon"}, "purchases": 0,
           "joined_at": AT}  # fmt: skip
    with shop.write() as conn:
        insert_rows(conn, member_states, [row])
    with shop.read() as conn:
        got = conn.execute(member_states.select()).one()
    assert (got.segments, got.attributes, got.joined_at) == (["vip"], {"city": "Lyon"}, AT)
    naive = {**row, "member_ref": "dan", "joined_at": AT.replace(tzinfo=None)}
    with pytest.raises((ValueError, StatementError), match="naive datetime"), shop.write() as conn:
        insert_rows(conn, member_states, [naive])
    with shop.read() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM member_states")).scalar_one() == 1
