"""Upgrades of one PostgreSQL database run one at a time: a second upgrade started while
one runs (two ``fidelite db upgrade``, two ``fidelite serve`` start-ups) waits for it,
then finds the schema at head; before, both created the same tables and one failed
(UniqueViolation on pg_type, DuplicateColumn)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from fidelite.store import Database
from fidelite.store.migrate import UPGRADE_LOCK, current_revision, head_revision
from tests.conftest import PG_ADMIN_URL, _pg_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_pg(pg_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (dropped afterwards)."""
    admin = create_engine(_pg_url(PG_ADMIN_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
    name = f"fidelite_lock_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
        )


def test_an_upgrade_waits_while_another_holds_the_lock(empty_pg: str) -> None:
    holder = create_engine(empty_pg, isolation_level="AUTOCOMMIT")
    db = Database(empty_pg)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            db.upgrade()
        except BaseException as exc:  # reported below
            errors.append(exc)

    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": UPGRADE_LOCK})
        worker = threading.Thread(target=run)
        worker.start()
        worker.join(1.5)
        assert worker.is_alive()  # waiting for the lock...
        assert _tables(db) == 0  # ...having created nothing
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": UPGRADE_LOCK})
    worker.join(60)
    assert not worker.is_alive() and errors == []
    assert current_revision(db) == head_revision(db)
    db.dispose()
    holder.dispose()


def test_two_upgrades_at_once_both_succeed(empty_pg: str) -> None:
    databases = [Database(empty_pg), Database(empty_pg)]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def run(db: Database) -> None:
        start.wait()
        try:
            db.upgrade()
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    threads = [threading.Thread(target=run, args=(db,)) for db in databases]
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes == ["ok", "ok"]
    assert current_revision(databases[0]) == head_revision(databases[0])
    for db in databases:
        db.dispose()
