"""What one delivery costs the database on PostgreSQL: the check right before the send
is one statement outside any transaction (one round trip), and recording the attempt
one transaction of three statements (the attempt numbers and erased events read
together, the attempt logged, the delivery moved on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from fidelite.webhooks import DeliveryWorker
from tests.conftest import make_database
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock
from tests.webhooks.test_erasure_claimed import two_members


@pytest.mark.postgres
def test_a_delivery_takes_four_statements_and_one_transaction(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: Receiver
) -> None:
    db = make_database("postgresql", request, tmp_path)
    try:
        two_members(db, receiver)
        worker = DeliveryWorker(db, allow_private=True, clock=Clock(), timeout=5)
        claims = worker.claim(10)
        statements: list[str] = []
        transactions: list[int] = []

        def executed(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            statements.append(statement.split()[0].upper())

        def began(conn: Any) -> None:  # a BEGIN sent: not an autocommit connection's
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                transactions.append(1)

        event.listen(db.writer, "before_cursor_execute", executed)
        event.listen(db.writer, "begin", began)
        try:
            assert [worker.deliver(c) for c in claims] == ["delivered", "delivered"]
        finally:
            event.remove(db.writer, "before_cursor_execute", executed)
            event.remove(db.writer, "begin", began)
        worker.close()
        assert statements == ["SELECT", "SELECT", "INSERT", "UPDATE"] * 2
        assert len(transactions) == 2
        assert len(receiver.requests) == 2
    finally:
        db.dispose()
