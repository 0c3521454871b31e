"""Which database errors stop an import (the database's or the machine's) and which are
a row's own (:func:`fidelite.processing.failure.database_failure`), on errors real
databases raise: by SQLite result code and PostgreSQL SQLSTATE, never message text."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from fidelite.processing.failure import database_failure


def _raised(engine_url: str, *statements: str) -> DBAPIError:
    """The error the last of ``statements`` raises, on a fresh connection."""
    engine = create_engine(engine_url)
    try:
        with engine.connect() as conn:
            for statement in statements[:-1]:
                conn.execute(text(statement))
            with pytest.raises(DBAPIError) as raised:
                conn.execute(text(statements[-1]))
        return raised.value
    finally:
        engine.dispose()


def test_sqlite_full_read_only_and_row_errors(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "t.db"
    shutil.copy(sqlite_template, path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (v TEXT UNIQUE)")
        conn.execute("INSERT INTO t VALUES ('a')")
    url = f"sqlite:///{path}"
    pages = "PRAGMA max_page_count = 1"  # (below the file's size: nothing may grow it)
    full = _raised(url, pages, "INSERT INTO t SELECT hex(randomblob(3000)) FROM t")
    found = database_failure(full)
    assert found is not None
    assert (found.code, found.reason, found.detail) == (
        "SQLITE_FULL",
        "the disk or the database is full",
        "database or disk is full",
    )
    read_only = _raised(f"sqlite:///file:{path}?mode=ro&uri=true", "INSERT INTO t VALUES ('b')")
    found = database_failure(read_only)
    assert found is not None
    assert (found.code, found.reason) == ("SQLITE_READONLY", "the database is read-only")
    # a row's own: a constraint, a syntax error
    assert database_failure(_raised(url, "INSERT INTO t VALUES ('a')")) is None
    assert database_failure(_raised(url, "INSERT INTO nowhere VALUES (1)")) is None
    assert database_failure(ValueError("not a database error")) is None


@pytest.mark.postgres
def test_postgresql_read_only_shutdown_and_row_errors(pg_server: str) -> None:
    read_only = _raised(pg_server, "SET default_transaction_read_only = on", "COMMIT",
                        "CREATE TEMP TABLE x (v int)")  # fmt: skip
    found = database_failure(read_only)
    assert found is not None
    assert (found.code, found.reason) == ("SQLSTATE 25006", "the database is read-only")
    killed = _raised(pg_server, "SELECT pg_terminate_backend(pg_backend_pid())")
    found = database_failure(killed)
    assert found is not None
    assert found.code == "SQLSTATE 57P01"
    assert found.reason == "the database server is shutting down"
    assert database_failure(_raised(pg_server, "SELECT 1/0")) is None  # 22012
    assert database_failure(_raised(pg_server, "SELECT 'x'::int")) is None  # 22P02
