"""A once-only announcement written by two transactions at once is written once: the
second waits for the first and skips the key (no unique violation)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from fidelite.store import Database
from fidelite.webhooks import record
from fidelite.webhooks.tables import outbox


@pytest.mark.postgres
def test_a_dedup_key_written_by_a_concurrent_transaction_is_skipped(wdb: Database) -> None:
    if not wdb.is_postgres:
        pytest.skip("SQLite serialises writers")
    results: dict[str, object] = {}

    def second() -> None:
        try:
            with wdb.write() as conn:
                results["second"] = record(
                    conn, "shop", "points.expiring", {"n": 2}, member_ref="ann", dedup_key="k1"
                )
        except Exception as exc:  # surfaced below
            results["second"] = exc

    with wdb.write() as conn:
        assert record(conn, "shop", "points.expiring", {"n": 1}, member_ref="ann", dedup_key="k1")
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)  # the second insert now waits on this transaction's row
        assert thread.is_alive()
    thread.join(10)
    assert results == {"second": False}
    assert _rows(wdb) == [("k1", {"n": 1})]


def test_a_dedup_key_already_written_is_skipped(wdb: Database) -> None:
    with wdb.write() as conn:
        assert record(conn, "shop", "points.expiring", {"n": 1}, dedup_key="k1") is True
        assert record(conn, "shop", "points.expiring", {"n": 2}, dedup_key="k1") is False
        assert record(conn, "shop", "points.expiring", {"n": 3}, dedup_key="k2") is True
        assert record(conn, "shop", "member.created", {"n": 4}) is True
        assert record(conn, "shop", "member.created", {"n": 5}) is True
    assert _rows(wdb) == [
            ("k1", {"n": 1}), ("k2", {"n": 3}), (None, {"n": 4}), (None, {"n": 5}),
        ]  # fmt: skip


def _rows(db: Database) -> list[tuple[object, ...]]:
    with db.read() as conn:
        rows = conn.execute(select(outbox.c.dedup_key, outbox.c.payload).order_by(outbox.c.id))
        return [tuple(r) for r in rows]
