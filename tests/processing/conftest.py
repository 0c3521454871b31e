"""Databases for processing tests (the shared fixtures empty every table)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.store import Database
from tests.conftest import BACKENDS, make_database


@pytest.fixture(params=BACKENDS)
def pdb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated database (SQLite file, then PostgreSQL) for processing tests."""
    database = make_database(request.param, request, tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def pg_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated PostgreSQL database, for races only a server can show."""
    database = make_database("postgresql", request, tmp_path)
    yield database
    database.dispose()
