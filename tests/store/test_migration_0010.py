"""``db upgrade`` from 0009 (SQLite file and PostgreSQL) adds ``api_keys.last_used_at``
and ``redemptions.used_by``, NULL for the keys and redemptions already there, which
keep working: a key still authenticates (and its use is then recorded)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from fidelite.api.keys import authenticate, create_key, list_keys
from fidelite.store import Database
from fidelite.store.migrate import current_revision, head_revision
from tests.cli.support import fidelite
from tests.conftest import BACKENDS, PG_ADMIN_URL, _pg_url


@pytest.fixture(params=BACKENDS)
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database migrated to 0009 only."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'old.db'}")
        database.upgrade("0009")
        yield database
        database.dispose()
        return
    request.getfixturevalue("pg_server")  # skips (or fails under CI) without a server
    admin = create_engine(_pg_url(PG_ADMIN_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
    name = f"fidelite_mig_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(_pg_url(name))
    database.upgrade("0009")
    yield database
    database.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_db_upgrade_adds_the_columns_and_keeps_keys_working(old_db: Database) -> None:
    with old_db.write() as conn:  # the columns of 0009
        conn.execute(
            text("INSERT INTO api_keys (key_id, program_id, role, secret_hash, label, "
                 "created_at) VALUES ('k1', 'shop', 'admin', :h, 'till-7', :at)"),
            {"h": "0" * 64, "at": datetime(2026, 1, 1, tzinfo=UTC)},
        )  # fmt: skip
    fidelite("db", "upgrade", db=old_db.url)
    assert current_revision(old_db) == head_revision(old_db) == "0010"
    with old_db.read() as conn:
        assert "last_used_at" in {c["name"] for c in inspect(conn).get_columns("api_keys")}
        assert "used_by" in {c["name"] for c in inspect(conn).get_columns("redemptions")}
    assert [(k.key_id, k.label, k.last_used_at) for k in list_keys(old_db)] == [
        ("k1", "till-7", None)
    ]
    key, token = create_key(old_db, "shop", "support")
    assert authenticate(old_db, token) == key
    assert next(k for k in list_keys(old_db) if k.key_id == key.key_id).last_used_at is not None
