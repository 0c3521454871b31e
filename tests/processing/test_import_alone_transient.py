"""An import row applied alone whose transaction PostgreSQL aborts because of another
writer (a real deadlock, 40P01) is applied again, not reported failed: nothing was
written, and the row is not at fault. A row that fails on its own is still failed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Connection, text

from fidelite.processing import importer
from fidelite.processing.importer import Failed
from fidelite.store import Database


@pytest.fixture
def table(pg_only: Database) -> Any:
    with pg_only.writer.begin() as conn:
        conn.execute(text("CREATE TABLE alone_deadlock (id int primary key, v int)"))
        conn.execute(text("INSERT INTO alone_deadlock VALUES (1, 0), (2, 0)"))
    yield pg_only
    with pg_only.writer.begin() as conn:
        conn.execute(text("DROP TABLE alone_deadlock"))


def test_a_row_aborted_by_a_deadlock_is_applied_again(table: Database) -> None:
    both_hold_one = threading.Barrier(2)
    tries: list[str] = []

    def side(first: int, second: int) -> Any:
        def apply(conn: Connection, item: str) -> str:
            tries.append(item)
            conn.execute(text(f"UPDATE alone_deadlock SET v = v + 1 WHERE id = {first}"))
            if tries.count(item) == 1:  # the first try: wait for the other to hold its row
                both_hold_one.wait(timeout=30)
            conn.execute(text(f"UPDATE alone_deadlock SET v = v + 1 WHERE id = {second}"))
            return "ok"

        return importer._alone(table, apply)

    answers: dict[str, Any] = {}
    threads = [
        threading.Thread(target=lambda: answers.update(a=side(1, 2)("a"))),
        threading.Thread(target=lambda: answers.update(b=side(2, 1)("b"))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == {"a": "ok", "b": "ok"}
    assert sorted(tries) == ["a", "a", "b"] or sorted(tries) == ["a", "b", "b"]
    with table.read() as conn:
        rows = conn.execute(text("SELECT id, v FROM alone_deadlock ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, 2), (2, 2)]  # each row's two updates, once


def test_a_row_failing_on_its_own_is_failed_after_one_try(table: Database) -> None:
    tries: list[int] = []

    def apply(conn: Connection, item: int) -> str:
        tries.append(item)
        conn.execute(text("INSERT INTO alone_deadlock VALUES (3, 'not a number')"))
        return "ok"

    answer = importer._alone(table, apply)(7)
    assert isinstance(answer, Failed)
    assert tries == [7]
