"""Databases for processing tests: the shared fixtures, plus emptying our own tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fidelite.store import Database
from tests.conftest import BACKENDS, make_database

OWN_TABLES = (
    "processed_events, event_earnings, rule_usage, rule_budgets, member_states, "
    "tier_changes, coupons, redemptions"
)


@pytest.fixture(params=BACKENDS)
def pdb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated database (SQLite file, then PostgreSQL) for processing tests."""
    database = make_database(request.param, request, tmp_path)
    if database.is_postgres:
        with database.write() as conn:
            conn.execute(text(f"TRUNCATE {OWN_TABLES} RESTART IDENTITY"))
    yield database
    database.dispose()
