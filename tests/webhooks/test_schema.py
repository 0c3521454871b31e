"""Migration 0004 matches the table definitions, and goes down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import fidelite.api.tables  # every table of the schema in the metadata compared below
import fidelite.processing.tables
import fidelite.webhooks.tables
from fidelite.store import Database
from fidelite.store.migrate import alembic_config
from fidelite.store.tables import Base


def test_migration_matches_the_tables(wdb: Database) -> None:
    with wdb.writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert fidelite.webhooks.tables.outbox.name == "outbox"
    assert {"webhook_subscriptions", "outbox", "webhook_deliveries", "webhook_attempts",
            "member_erasures"} <= set(fidelite.processing.tables.metadata.tables)  # fmt: skip


def test_downgrade_and_upgrade_again(wdb: Database) -> None:
    command.downgrade(alembic_config(wdb), "0002")
    with wdb.writer.connect() as conn:
        names = set(conn.dialect.get_table_names(conn))
    assert "outbox" not in names and "member_erasures" not in names
    wdb.upgrade("head")
    with wdb.writer.connect() as conn:
        assert "outbox" in set(conn.dialect.get_table_names(conn))
