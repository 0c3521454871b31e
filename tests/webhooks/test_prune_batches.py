"""Pruning deletes in bounded batches, each its own short write transaction, so other
writers get through between them (SQLite's one write lock is never held for the whole
run)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, RetryPolicy, prune, retention
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.tables import attempts, deliveries, outbox
from tests.conftest import make_database
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, count, processor, purchase


class Transactions:
    """The write transactions committed on ``db``'s writer engine, each as the number of
    rows each of its DELETE statements removed, by table."""

    def __init__(self, db: Database) -> None:
        self.engine = db.writer
        self.done: list[list[tuple[str, int]]] = []
        self.current: list[tuple[str, int]] = []
        event.listen(self.engine, "after_cursor_execute", self.executed)
        event.listen(self.engine, "commit", self.committed)

    def executed(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM"):
            table = statement.split()[2]
            self.current.append((table, cursor.rowcount))

    def committed(self, conn: Any) -> None:
        self.done.append(self.current)
        self.current = []

    def close(self) -> None:
        event.remove(self.engine, "after_cursor_execute", self.executed)
        event.remove(self.engine, "commit", self.committed)


@pytest.fixture
def finished(wdb: Database, receiver: Receiver) -> Iterator[Clock]:
    """12 members: 24 events, each delivered to one subscription (1 attempt each)."""
    processor(wdb)
    subs.add(wdb, "shop", receiver.url, ["*"], allow_private=True)
    for n in range(12):
        processor(wdb).process(purchase(f"p{n}", f"m{n}", "10.00"))
    clock = Clock()
    policy = RetryPolicy(jitter=0)
    worker = DeliveryWorker(wdb, policy=policy, allow_private=True, clock=clock)
    try:
        assert worker.run_once().delivered == 24
    finally:
        worker.close()
    yield clock


def test_prune_deletes_in_batches_each_its_own_transaction(
    wdb: Database, finished: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 5: 24 deliveries (and their 24 attempts) in 5 transactions of at most
    5 deliveries, then the 24 events in 5 more; no transaction deletes more than a batch."""
    monkeypatch.setattr(retention, "BATCH", 5, raising=False)
    seen = Transactions(wdb)
    try:
        gone = prune(wdb, finished.now + timedelta(days=1))
    finally:
        seen.close()
    assert gone == {"deliveries": 24, "attempts": 24, "events": 24}
    deleting = [t for t in seen.done if t]
    assert [sum(n for table, n in t if table == "webhook_deliveries") for t in deleting] == [
        5, 5, 5, 5, 4, 0, 0, 0, 0, 0,
    ]  # fmt: skip
    assert [sum(n for table, n in t if table == "outbox") for t in deleting] == [
        0, 0, 0, 0, 0, 5, 5, 5, 5, 4,
    ]  # fmt: skip
    assert (count(wdb, deliveries), count(wdb, attempts), count(wdb, outbox)) == (0, 0, 0)


def test_another_writer_gets_through_between_batches(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite: right after prune's first batch commits (its connection goes back to the
    pool), another connection's write (``BEGIN IMMEDIATE``, no wait) succeeds: the lock
    is free between batches, with 4 of the 6 deliveries still to prune."""
    db = make_database("sqlite", request, tmp_path)
    processor(db)
    subs.add(db, "shop", receiver.url, ["*"], allow_private=True)
    for n in range(3):
        processor(db).process(purchase(f"p{n}", f"m{n}", "10.00"))
    clock = Clock()
    worker = DeliveryWorker(db, allow_private=True, clock=clock)
    assert worker.run_once().delivered == 6
    worker.close()
    other = sqlite3.connect(tmp_path / "fidelite.db", timeout=0, isolation_level=None)
    wrote: list[str] = []

    def returned(dbapi_conn: Any, record: Any) -> None:  # a transaction of prune ended
        if wrote:
            return
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE outbox SET member_ref = member_ref WHERE id = 1")
            other.execute("COMMIT")
            left = other.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0]
            wrote.append(f"wrote with {left} deliveries left to prune")
        except sqlite3.OperationalError as exc:
            wrote.append(str(exc))

    monkeypatch.setattr(retention, "BATCH", 2, raising=False)
    event.listen(db.writer, "checkin", returned)
    try:
        gone = prune(db, clock.now + timedelta(days=1))
    finally:
        event.remove(db.writer, "checkin", returned)
        other.close()
        db.dispose()
    assert gone == {"deliveries": 6, "attempts": 6, "events": 6}
    assert wrote == ["wrote with 4 deliveries left to prune"]
