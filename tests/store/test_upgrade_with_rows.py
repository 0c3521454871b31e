"""Upgrading a database that holds rows in every table other tables reference (programs,
members, accounts, ledger transactions, lots; webhook subscriptions, the outbox and
deliveries), from each older revision to head, on SQLite and PostgreSQL.

SQLite runs with foreign keys on: a migration that rebuilt a referenced table (copy,
``DROP TABLE``, rename, as Alembic's batch mode does) would be refused there as soon as a
row references it (0008 was, on any database where a webhook delivery had been made).
The upgraded schema must equal a fresh database's, and every row must still be there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text

from fidelite.store import Database
from fidelite.store.migrate import MIGRATIONS, alembic_config, current_revision, head_revision
from fidelite.webhooks import subscriptions as subs
from tests.conftest import BACKENDS, PG_ADMIN_URL, _pg_url

# Every revision before head, so that the next migration is tested from all of them too.
OLDER = sorted(r.revision for r in ScriptDirectory(str(MIGRATIONS)).walk_revisions() if r.nextrev)
LEDGER_ROWS = {
    "programs": 1,
    "currencies": 1,
    "members": 1,
    "accounts": 2,
    "ledger_transactions": 1,
    "lots": 1,
    "postings": 2,
}
WEBHOOK_ROWS = {"webhook_subscriptions": 1, "outbox": 1, "webhook_deliveries": 1,
                "webhook_attempts": 1}  # fmt: skip
AT = "'2026-11-01 08:00:00'"


class Scratch:
    """Empty databases of one backend, made on demand and removed afterwards."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.made: list[Database] = []
        self.names: list[str] = []
        self.admin = (
            create_engine(_pg_url(PG_ADMIN_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
            if backend == "postgresql"
            else None
        )

    def new(self) -> Database:
        name = f"fidelite_rows_{uuid.uuid4().hex[:10]}"
        if self.admin is None:
            database = Database(f"sqlite:///{self.tmp_path / (name + '.db')}")
        else:
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self.names.append(name)
            database = Database(_pg_url(name))
        self.made.append(database)
        return database

    def close(self) -> None:
        for database in self.made:
            database.dispose()
        if self.admin is not None:
            with self.admin.connect() as conn:
                for name in self.names:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.admin.dispose()


@pytest.fixture(params=BACKENDS)
def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scratch]:
    if request.param == "postgresql":
        request.getfixturevalue("pg_server")  # skips (or fails under CI) without a server
    made = Scratch(request.param, tmp_path)
    yield made
    made.close()


def _ledger_rows(conn: Connection) -> None:
    """A member's earn with its lot and postings, in the columns of revision 0001."""
    member = "(SELECT id FROM members WHERE ref = 'ann')"
    txn = "(SELECT id FROM ledger_transactions WHERE idempotency_key = 'k1')"
    for sql in [
        f"INSERT INTO programs (id, created_at) VALUES ('shop', {AT})",
        "INSERT INTO currencies (program_id, code) VALUES ('shop', 'points')",
        "INSERT INTO members (program_id, ref, status, created_at) "
        f"VALUES ('shop', 'ann', 'active', {AT})",
        "INSERT INTO accounts (program_id, currency, kind, member_id, balance) "
        f"VALUES ('shop', 'points', 'available', {member}, 10)",
        "INSERT INTO accounts (program_id, currency, kind, member_id, balance) "
        "VALUES ('shop', 'points', 'issued', NULL, NULL)",
        "INSERT INTO ledger_transactions (program_id, idempotency_key, request_hash, kind, "
        "member_id, currency, points, reversed_points, reason, occurred_at, recorded_at, "
        f"result) VALUES ('shop', 'k1', 'h', 'earn', {member}, 'points', 10, 0, 'r', {AT}, "
        f"{AT}, '{{}}')",
        "INSERT INTO lots (program_id, member_id, currency, earn_transaction_id, points, "
        f"remaining, state, earned_at) VALUES ('shop', {member}, 'points', {txn}, 10, 10, "
        f"'available', {AT})",
        "INSERT INTO postings (transaction_id, account_id, lot_id, points) VALUES "
        f"({txn}, (SELECT id FROM accounts WHERE kind = 'available'), "
        "(SELECT id FROM lots), 10)",
        "INSERT INTO postings (transaction_id, account_id, lot_id, points) VALUES "
        f"({txn}, (SELECT id FROM accounts WHERE kind = 'issued'), NULL, -10)",
    ]:
        conn.execute(text(sql))


def _webhook_rows(conn: Connection) -> None:
    """A subscription, an outbox message, its delivery and one attempt (columns of 0004)."""
    for sql in [
        "INSERT INTO webhook_subscriptions (program_id, url, event_types, secret, active, "
        "description, created_at) VALUES ('shop', 'http://127.0.0.1:9/h', '[\"*\"]', "
        f"'whsec_0123456789abcdef', true, NULL, {AT})",
        "INSERT INTO outbox (program_id, event_type, member_ref, dedup_key, payload, "
        f"created_at, dispatched) VALUES ('shop', 'points.earned', 'ann', 'd1', '{{}}', {AT}, "
        "true)",
        "INSERT INTO webhook_deliveries (subscription_id, outbox_id, program_id, state, "
        "attempts, created_at) VALUES ((SELECT id FROM webhook_subscriptions), "
        f"(SELECT id FROM outbox), 'shop', 'failed', 1, {AT})",
        "INSERT INTO webhook_attempts (delivery_id, number, at, status, error, duration_ms) "
        f"VALUES ((SELECT id FROM webhook_deliveries), 1, {AT}, NULL, 'refused', 3)",
    ]:
        conn.execute(text(sql))


def _counts(db: Database, tables: dict[str, int]) -> dict[str, int]:
    with db.read() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def schema(db: Database) -> dict[str, Any]:
    """Everything the inspector sees of each table (plus SQLite's triggers)."""
    with db.writer.connect() as conn:
        insp = inspect(conn)
        tables: dict[str, Any] = {}
        for name in sorted(insp.get_table_names()):
            columns = [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in insp.get_columns(name)
            ]
            tables[name] = {
                "columns": sorted(columns),
                "pk": insp.get_pk_constraint(name)["constrained_columns"],
                "fks": sorted(
                    (fk["name"] or "", tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in insp.get_foreign_keys(name)
                ),
                "indexes": sorted(
                    (ix["name"] or "", tuple(ix["column_names"]), bool(ix["unique"]))
                    for ix in insp.get_indexes(name)
                ),
                "uniques": sorted(
                    (u["name"] or "", tuple(u["column_names"]))
                    for u in insp.get_unique_constraints(name)
                ),
                "checks": sorted(
                    (c["name"] or "", " ".join(c["sqltext"].split()))
                    for c in insp.get_check_constraints(name)
                ),
            }
        if db.dialect == "sqlite":
            triggers = text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            tables["(triggers)"] = sorted((n, s) for n, s in conn.execute(triggers))
    return tables


@pytest.mark.parametrize("start", OLDER)
def test_upgrade_from_an_older_revision_with_referenced_rows(scratch: Scratch, start: str) -> None:
    old = scratch.new()
    old.upgrade("0001")
    with old.write() as conn:
        _ledger_rows(conn)
    expected = dict(LEDGER_ROWS)
    if start >= "0004":
        old.upgrade("0004")
        with old.write() as conn:
            _webhook_rows(conn)
        expected |= WEBHOOK_ROWS
    old.upgrade(start)
    assert current_revision(old) == start

    old.upgrade()

    assert current_revision(old) == head_revision(old)
    assert _counts(old, expected) == expected
    if start >= "0004":  # subscriptions made before 0008 were never allowed private URLs
        assert [(s.url, s.allow_private) for s in subs.list_all(old, "shop")] == [
            ("http://127.0.0.1:9/h", False)
        ]
    fresh = scratch.new()
    fresh.upgrade()
    assert schema(old) == schema(fresh)


def test_webhook_allow_private_is_removed_and_added_again_with_deliveries(
    scratch: Scratch,
) -> None:
    """0008 down and up again in place, deliveries and attempts kept."""
    db = scratch.new()
    db.upgrade("0004")
    with db.write() as conn:
        _webhook_rows(conn)
    db.upgrade()
    command.downgrade(alembic_config(db), "0007")
    assert current_revision(db) == "0007"
    with db.read() as conn:
        columns = [c["name"] for c in inspect(conn).get_columns("webhook_subscriptions")]
    assert "allow_private" not in columns
    db.upgrade()
    assert _counts(db, WEBHOOK_ROWS) == WEBHOOK_ROWS
    assert [s.allow_private for s in subs.list_all(db, "shop")] == [False]
